package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry/retention"
)

// KeyRetention is the key of retention rules (internal/registry/retention
// says what they mean).
const KeyRetention = "retention"

// RetentionActor is the actor recorded on what a retention run deletes.
const RetentionActor = "retention"

// ErrTagMoved means a tag no longer points at the manifest a decision
// about it was made on; the decision is void.
var ErrTagMoved = errors.New("tag moved since the retention plan")

func checkRetention(v string) error {
	_, err := retention.Parse(v)
	return err
}

// RetentionPlan is what retention decides for one repository.
type RetentionPlan struct {
	Repository string `json:"repository"`
	// Policy is the retention= value in effect and Pattern where it is set.
	Policy  string `json:"policy"`
	Pattern string `json:"pattern"`
	// Tags are every tag's decision; Manifests those of the untagged
	// manifests an untagged= clause looks at.
	Tags      []RetentionItem `json:"tags"`
	Manifests []RetentionItem `json:"manifests"`
}

// RetentionItem is one decision: a tag (Tag set) or an untagged manifest.
type RetentionItem struct {
	Tag    string        `json:"tag,omitempty"`
	Digest digest.Digest `json:"digest"`
	Delete bool          `json:"delete"`
	Reason string        `json:"reason"`
	// Error is why a run could not carry out a deletion.
	Error string `json:"error,omitempty"`
}

// Deletions lists the items the plan deletes: tags, then manifests in the
// order they are deleted.
func (p RetentionPlan) Deletions() []RetentionItem {
	var out []RetentionItem
	for _, l := range [][]RetentionItem{p.Tags, p.Manifests} {
		for _, it := range l {
			if it.Delete {
				out = append(out, it)
			}
		}
	}
	return out
}

// RetentionRun is the report of a run: the counts the store keeps and,
// per repository, what went (or failed to): Plans for the run just made,
// Report (the same as JSON) for a listed one.
type RetentionRun struct {
	metadata.RetentionRun
	Plans []RetentionPlan
}

func (s *Service) retentionStore() (metadata.RetentionStore, error) {
	rs, ok := s.meta.(metadata.RetentionStore)
	if !ok || s.policies == nil {
		return nil, Errorf(ErrUnsupported, "this registry's database keeps no retention")
	}
	return rs, nil
}

// retentionScope is the store and the repositories pattern names.
func (s *Service) retentionScope(ctx context.Context, pattern string) (metadata.RetentionStore, []string, error) {
	rs, err := s.retentionStore()
	if err != nil {
		return nil, nil, err
	}
	repos, err := s.retentionRepositories(ctx, pattern)
	return rs, repos, err
}

// PreviewRetention decides, without deleting anything, what retention
// would delete now in the repositories pattern names (a repository,
// NAMESPACE/* or *) that have a retention= policy.
func (s *Service) PreviewRetention(ctx context.Context, pattern string) ([]RetentionPlan, error) {
	rs, repos, err := s.retentionScope(ctx, pattern)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var out []RetentionPlan
	for _, repo := range repos {
		plan, ok, err := s.planRetention(ctx, rs, repo, now)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, plan)
		}
	}
	return out, nil
}

// retentionRepositories lists the repositories pattern names.
func (s *Service) retentionRepositories(ctx context.Context, pattern string) ([]string, error) {
	if err := ValidatePattern(pattern); err != nil {
		return nil, err
	}
	prefix, glob := strings.CutSuffix(pattern, "*")
	if !glob {
		ok, err := s.meta.RepositoryExists(ctx, pattern)
		if err != nil || !ok {
			if err == nil {
				err = Errorf(ErrNameUnknown, "repository %s not found", pattern)
			}
			return nil, err
		}
		return []string{pattern}, nil
	}
	// Listing is in byte order, so a namespace's repositories come
	// together, from the first name after NS/ up to the first without it.
	var out []string
	last := prefix
	for {
		page, err := s.meta.ListRepositories(ctx, last, 1000)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			if !strings.HasPrefix(r, prefix) {
				return out, nil
			}
			out = append(out, r)
		}
		if len(page) < 1000 {
			return out, nil
		}
		last = page[len(page)-1]
	}
}

// planRetention decides for one repository; ok is false when no
// retention= policy applies to it.
func (s *Service) planRetention(ctx context.Context, rs metadata.RetentionStore, repo string, now time.Time) (RetentionPlan, bool, error) {
	set, err := s.policies.Setting(ctx, repo, KeyRetention)
	if err != nil || strings.TrimSpace(set.Value) == "" {
		return RetentionPlan{}, false, err
	}
	pol, err := retention.Parse(set.Value)
	if err != nil {
		// Checked when it was set; a value stored by another version of
		// wharf may still not parse here.
		return RetentionPlan{}, false, fmt.Errorf("retention policy of %s (from %s): %w", repo, set.Pattern, err)
	}
	uses, err := rs.TagUses(ctx, repo)
	if errors.Is(err, metadata.ErrNotFound) {
		return RetentionPlan{}, false, nil
	}
	if err != nil {
		return RetentionPlan{}, false, err
	}
	tags := make([]retention.Tag, len(uses))
	for i, u := range uses {
		tags[i] = retention.Tag{Name: u.Name, Digest: u.Digest, PushedAt: u.PushedAt, LastPulled: u.LastPulled}
	}
	var manifests []retention.Manifest
	if pol.Untagged > 0 {
		nodes, err := rs.ManifestNodes(ctx, repo)
		if err != nil {
			return RetentionPlan{}, false, err
		}
		manifests = make([]retention.Manifest, len(nodes))
		for i, n := range nodes {
			manifests[i] = retention.Manifest{Digest: n.Digest, CreatedAt: n.CreatedAt, Subject: n.Subject, Children: n.Children}
		}
	}
	d := retention.Decide(pol, now, tags, manifests)
	plan := RetentionPlan{Repository: repo, Policy: set.Value, Pattern: set.Pattern,
		Tags: []RetentionItem{}, Manifests: []RetentionItem{}}
	for _, t := range d.Tags {
		plan.Tags = append(plan.Tags, RetentionItem{Tag: t.Tag, Digest: t.Digest, Delete: !t.Keep, Reason: t.Reason})
	}
	for _, m := range d.Manifests {
		plan.Manifests = append(plan.Manifests, RetentionItem{Digest: m.Digest, Delete: !m.Keep, Reason: m.Reason})
	}
	return plan, true, nil
}

// RunRetention deletes what PreviewRetention names, repository by
// repository, deciding each one afresh just before its deletions, and
// records the run. A tag is deleted only if it still points where it did
// when decided, and an untagged manifest only if it is still untagged and
// unreferenced, so that a push racing the run wins. Each deletion writes
// the audit line of a delete, by the retention actor; the run writes one
// more line with its counts. trigger is "schedule" or "manual"; a manual
// run records the request's actor.
func (s *Service) RunRetention(ctx context.Context, pattern, trigger string) (*RetentionRun, error) {
	rs, repos, err := s.retentionScope(ctx, pattern)
	if err != nil {
		return nil, err
	}
	run := &RetentionRun{RetentionRun: metadata.RetentionRun{StartedAt: s.opts.Now(), Trigger: trigger, Actor: Actor(ctx), Scope: pattern,
		Replica: s.opts.GC.Replica}}
	dctx := WithActor(ctx, RetentionActor)
	for _, repo := range repos {
		if ctx.Err() != nil {
			break
		}
		plan, ok, err := s.planRetention(ctx, rs, repo, s.opts.Now())
		if err != nil {
			run.Failures++
			run.Plans = append(run.Plans, RetentionPlan{Repository: repo, Tags: []RetentionItem{{Error: err.Error()}}})
			s.log.WarnContext(ctx, "retention plan failed", "repository", repo, "err", err)
			continue
		}
		if !ok {
			continue
		}
		run.Repositories++
		done := RetentionPlan{Repository: repo, Policy: plan.Policy, Pattern: plan.Pattern, Tags: []RetentionItem{}, Manifests: []RetentionItem{}}
		for _, it := range plan.Deletions() {
			err := s.retentionDelete(dctx, repo, it)
			switch {
			case err != nil:
				it.Error = err.Error()
				run.Failures++
			case it.Tag != "":
				run.DeletedTags++
			default:
				run.DeletedManifests++
			}
			if it.Tag != "" {
				done.Tags = append(done.Tags, it)
			} else {
				done.Manifests = append(done.Manifests, it)
			}
		}
		if len(done.Tags)+len(done.Manifests) > 0 {
			run.Plans = append(run.Plans, done)
		}
	}
	run.FinishedAt = s.opts.Now()
	report, err := json.Marshal(run.Plans)
	if err != nil {
		return nil, err
	}
	run.Report = report
	// The record outlives a cancelled context: what was deleted must be
	// on record.
	if err := rs.AddRetentionRun(context.WithoutCancel(ctx), &run.RetentionRun); err != nil {
		return nil, fmt.Errorf("record retention run: %w", err)
	}
	if err := s.emitRetention(context.WithoutCancel(ctx), run); err != nil {
		// The run happened and is on record; only its webhooks are lost.
		s.log.WarnContext(ctx, "retention run not sent to webhooks", "run", run.ID, "err", err)
	}
	s.log.InfoContext(ctx, "retention run", "user", Actor(ctx), "trigger", trigger, "scope", pattern, "run", run.ID,
		"repositories", run.Repositories, "deleted_tags", run.DeletedTags, "deleted_manifests", run.DeletedManifests,
		"failures", run.Failures, "duration", run.FinishedAt.Sub(run.StartedAt))
	return run, ctx.Err()
}

// emitRetention reports a run to the webhooks subscribed to retention:
// one event of no repository with the totals, which any namespace may
// read, and one per repository with what went there and why. The tags
// and manifests deleted are delete events already, recorded by the store.
func (s *Service) emitRetention(ctx context.Context, run *RetentionRun) error {
	totals, err := json.Marshal(map[string]any{"run": run.ID, "trigger": run.Trigger, "scope": run.Scope,
		"repositories": run.Repositories, "deleted_tags": run.DeletedTags, "deleted_manifests": run.DeletedManifests, "failures": run.Failures})
	if err != nil {
		return err
	}
	events := []metadata.Event{{Action: metadata.EventRetention, Actor: run.Actor, Detail: string(totals)}}
	for _, p := range run.Plans {
		detail, err := json.Marshal(map[string]any{"run": run.ID, "deleted": p})
		if err != nil {
			return err
		}
		events = append(events, metadata.Event{Action: metadata.EventRetention, Repo: p.Repository, Actor: run.Actor, Detail: string(detail)})
	}
	return s.EmitEvents(ctx, events...)
}

// retentionDelete carries out one deletion of a plan.
func (s *Service) retentionDelete(ctx context.Context, repo string, it RetentionItem) error {
	if it.Tag != "" {
		err := s.deleteTag(withTagTarget(ctx, it.Tag, it.Digest), repo, it.Tag)
		if err == nil {
			s.auditDelete(ctx, "tag", repo, it.Tag)
		}
		return err
	}
	gc, ok := s.meta.(metadata.Collector)
	if !ok {
		return Errorf(ErrUnsupported, "this registry's database cannot delete untagged manifests")
	}
	// The plan's cutoff is the policy's, which is older than anything a
	// push under way is still writing; the store re-checks that the
	// manifest is untagged and that no index lists it.
	deleted, err := gc.DeleteUntaggedManifest(ctx, metadata.ManifestRef{Repo: repo, Digest: it.Digest}, s.opts.Now())
	if err != nil {
		return err
	}
	if !deleted {
		return errors.New("no longer an untagged manifest that nothing holds: left in place")
	}
	s.manifests.drop(repo, it.Digest)
	s.auditDelete(ctx, "manifest", repo, it.Digest.String())
	return nil
}

// RetentionRuns lists up to n recorded runs, newest first, with IDs
// below before (0: from the newest).
func (s *Service) RetentionRuns(ctx context.Context, before int64, n int) ([]RetentionRun, error) {
	rs, err := s.retentionStore()
	if err != nil {
		return nil, err
	}
	runs, err := rs.ListRetentionRuns(ctx, before, n)
	out := make([]RetentionRun, len(runs))
	for i, r := range runs {
		out[i] = RetentionRun{RetentionRun: r}
	}
	return out, err
}

// RetentionLease is the name of the lease a scheduled run holds.
const RetentionLease = "retention"

// ScheduledRetention runs retention over every repository if this
// process, holder, wins the lease for the next interval: of replicas
// sharing a database, one runs per interval, whichever asks first once
// the last run's lease lapsed. A nil run means the lease is live. A run
// longer than its interval may overlap the next one, which is harmless:
// each deletion re-checks its condition.
func (s *Service) ScheduledRetention(ctx context.Context, holder string, interval time.Duration) (*RetentionRun, error) {
	won, err := s.ClaimInterval(ctx, RetentionLease, holder, interval)
	if err != nil || !won {
		return nil, err
	}
	return s.RunRetention(ctx, "*", "schedule")
}

// MirrorEvictLease is the name of the lease a mirror eviction pass holds.
const MirrorEvictLease = "mirror-evict"

// ClaimInterval makes holder the one process, of those sharing the
// database, that runs the periodic job lease for the next interval. It
// reports false while another holder's claim lasts, and ErrUnsupported
// when the database keeps no leases.
func (s *Service) ClaimInterval(ctx context.Context, lease, holder string, interval time.Duration) (bool, error) {
	l, ok := s.meta.(metadata.Leaser)
	if !ok {
		return false, Errorf(ErrUnsupported, "this registry's database keeps no leases")
	}
	now := s.opts.Now()
	return l.ClaimLease(ctx, lease, holder, now, now.Add(interval))
}

type tagTargetKey struct{}

type tagTarget struct {
	tag string
	d   digest.Digest
}

// withTagTarget makes deleteTag delete tag only if it still points at d,
// checked in the delete's transaction (ErrTagMoved otherwise).
func withTagTarget(ctx context.Context, tag string, d digest.Digest) context.Context {
	return context.WithValue(ctx, tagTargetKey{}, tagTarget{tag, d})
}

// guardTarget wraps plan, if ctx expects the deleted tag at a digest,
// with the check that it still is.
func guardTarget(ctx context.Context, tag string, plan metadata.TagPlan) metadata.TagPlan {
	want, ok := ctx.Value(tagTargetKey{}).(tagTarget)
	if !ok || want.tag != tag {
		return plan
	}
	return func(current []metadata.TagTarget) ([]metadata.TagMove, error) {
		for _, t := range current {
			if t.Name == tag && t.Digest != want.d {
				return nil, fmt.Errorf("%s now points at %s: %w", tag, t.Digest, ErrTagMoved)
			}
		}
		if plan == nil {
			return nil, nil
		}
		return plan(current)
	}
}
