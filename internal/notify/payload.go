package notify

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// Payload formats, chosen per hook.
const (
	// FormatCNCF is the CNCF distribution registry's notification
	// envelope, so that consumers written for it work unchanged.
	FormatCNCF = "cncf"
	// FormatDockerHub is Docker Hub's push payload, plus the digest (and
	// the action, for events other than a push).
	FormatDockerHub = "dockerhub"
	// FormatCloudEvents is a CloudEvents 1.0 event in structured JSON mode.
	FormatCloudEvents = "cloudevents"
)

// Formats lists the payload formats.
func Formats() []string { return []string{FormatCNCF, FormatDockerHub, FormatCloudEvents} }

// Events lists the actions a hook may subscribe to.
func Events() []string {
	return []string{metadata.EventPush, metadata.EventDelete, metadata.EventTag, metadata.EventPull,
		metadata.EventGC, metadata.EventRetention, metadata.EventBaseUpdated}
}

// cncfEvent is one event of distribution's envelope
// (distribution/notifications/event.go), with the fields wharf knows.
type cncfEvent struct {
	ID        string     `json:"id"`
	Timestamp time.Time  `json:"timestamp"`
	Action    string     `json:"action"`
	Target    cncfTarget `json:"target"`
	Request   struct {
		Host string `json:"host,omitempty"`
	} `json:"request"`
	Actor struct {
		Name string `json:"name,omitempty"`
	} `json:"actor"`
	Source struct {
		Addr       string `json:"addr,omitempty"`
		InstanceID string `json:"instanceID,omitempty"`
	} `json:"source"`
	// Count and Detail are wharf's: pulls a batch stands for, a run's
	// report. distribution's consumers ignore fields they do not know.
	Count  int64           `json:"count,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

type cncfTarget struct {
	MediaType  string `json:"mediaType,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Size       int64  `json:"size,omitempty"`
	Length     int64  `json:"length,omitempty"`
	Repository string `json:"repository"`
	URL        string `json:"url,omitempty"`
	Tag        string `json:"tag,omitempty"`
}

// payloader renders deliveries; registryURL ("" when unknown) prefixes
// the links.
type payloader struct {
	registryURL string
	host        string
	instance    string
}

func newPayloader(registryURL string) payloader {
	p := payloader{registryURL: strings.TrimSuffix(registryURL, "/")}
	if _, rest, ok := strings.Cut(p.registryURL, "://"); ok {
		p.host = rest
	}
	p.instance, _ = os.Hostname()
	return p
}

// render returns the Content-Type and body of d for a hook in format.
func (p payloader) render(format string, d metadata.Delivery) (string, []byte, error) {
	var detail json.RawMessage
	if d.Detail != "" {
		detail = json.RawMessage(d.Detail)
	}
	var v any
	contentType := "application/json"
	switch format {
	case FormatCNCF:
		contentType = "application/vnd.docker.distribution.events.v1+json"
		e := cncfEvent{ID: d.EventID, Timestamp: d.CreatedAt, Action: d.Action, Count: d.Count, Detail: detail,
			Target: cncfTarget{MediaType: d.MediaType, Digest: d.Digest.String(), Size: d.Size, Length: d.Size,
				Repository: d.Repo, Tag: d.Tag}}
		// distribution knows push, pull and delete; a tag the registry
		// moved is, to its consumers, the tag pushed.
		if d.Action == metadata.EventTag {
			e.Action = metadata.EventPush
		}
		if d.Digest != "" && p.registryURL != "" {
			e.Target.URL = p.registryURL + "/v2/" + d.Repo + "/manifests/" + d.Digest.String()
		}
		e.Request.Host, e.Actor.Name, e.Source.Addr, e.Source.InstanceID = p.host, d.Actor, p.host, p.instance
		v = map[string]any{"events": []cncfEvent{e}}
	case FormatDockerHub:
		ns, name, _ := strings.Cut(d.Repo, "/")
		repoName := d.Repo
		if p.host != "" {
			repoName = p.host + "/" + d.Repo
		}
		v = map[string]any{
			"callback_url": "",
			"action":       d.Action,
			"digest":       d.Digest.String(),
			"push_data": map[string]any{
				"pushed_at": d.CreatedAt.Unix(), "pusher": d.Actor, "tag": d.Tag,
				"images": []string{}, "media_type": d.MediaType,
			},
			"repository": map[string]any{
				"repo_name": repoName, "namespace": ns, "name": name, "owner": ns,
				"repo_url": p.registryURL + "/r/" + d.Repo, "status": "Active",
				"date_created": nil, "is_official": false, "is_trusted": false,
			},
			"count":  d.Count,
			"detail": detail,
		}
	case FormatCloudEvents:
		contentType = "application/cloudevents+json"
		source := "/" + d.Repo
		if p.registryURL != "" {
			source = p.registryURL + source
		}
		subject := d.Repo
		if d.Tag != "" {
			subject += ":" + d.Tag
		} else if d.Digest != "" {
			subject += "@" + d.Digest.String()
		}
		v = map[string]any{
			"specversion": "1.0", "id": d.EventID, "source": source, "type": "io.wharf.image." + d.Action,
			"time": d.CreatedAt.Format(time.RFC3339Nano), "subject": subject, "datacontenttype": "application/json",
			"data": map[string]any{
				"repository": d.Repo, "tag": d.Tag, "digest": d.Digest.String(), "mediaType": d.MediaType,
				"size": d.Size, "actor": d.Actor, "count": d.Count, "detail": detail,
			},
		}
	default:
		return "", nil, fmt.Errorf("notify: unknown payload format %q", format)
	}
	body, err := json.Marshal(v)
	return contentType, body, err
}
