package replicate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/secretkey"
)

// RuleSpec is what an owner says when creating a rule.
type RuleSpec struct {
	// Repositories is a name under the namespace, a prefix ending in
	// "*", or "" for the whole namespace.
	Repositories string
	URL          string
	DestPrefix   string
	Username     string
	Password     string
}

// Service keeps replication rules and runs them.
type Service struct {
	store metadata.ReplicationStore
	// sealer is nil when no secret key could be found: rules without a
	// password still work, storing one is refused.
	sealer *secretkey.Sealer
	keyErr error
	// Source is this registry as the copier reaches it.
	source    Endpoint
	transport http.RoundTripper
	now       func() time.Time
}

// NewService returns a Service storing rules in store, sealing passwords
// with the key secretkey.LoadKey found (or keyErr, reported when a password must be
// stored), copying from source.
func NewService(store metadata.ReplicationStore, key []byte, keyErr error, source Endpoint, transport http.RoundTripper, now func() time.Time) (*Service, error) {
	s := &Service{store: store, keyErr: keyErr, source: source, transport: transport, now: now}
	if key != nil {
		sealer, err := secretkey.NewSealer(key)
		if err != nil {
			return nil, err
		}
		s.sealer = sealer
	}
	return s, nil
}

func aad(id int64) string { return "replication_rule:" + strconv.FormatInt(id, 10) }

// CreateRule validates spec and stores it as a rule of namespace ns.
func (s *Service) CreateRule(ctx context.Context, ns string, spec RuleSpec, actor string) (int64, error) {
	if _, err := (Endpoint{URL: spec.URL, Prefix: spec.DestPrefix}).repo(ns + "/x"); err != nil {
		return 0, fmt.Errorf("destination: %w", err)
	}
	if spec.Password != "" && s.sealer == nil {
		if s.keyErr == nil {
			s.keyErr = secretkey.ErrNoKey
		}
		return 0, s.keyErr
	}
	pattern := ns + "/*"
	if spec.Repositories != "" {
		pattern = ns + "/" + spec.Repositories
	}
	id, err := s.store.CreateReplicationRule(ctx, &metadata.ReplicationRule{Namespace: ns, Pattern: pattern,
		URL: spec.URL, DestPrefix: spec.DestPrefix, Username: spec.Username, CreatedBy: actor})
	if err != nil || spec.Password == "" {
		return id, err
	}
	// Sealed against the ID, which exists only now.
	if err := s.store.SetReplicationPassword(ctx, id, s.sealer.Seal(spec.Password, aad(id))); err != nil {
		_ = s.store.DeleteReplicationRule(ctx, id)
		return 0, err
	}
	return id, nil
}

// copier returns the copier for rule r, its password opened.
func (s *Service) copier(r metadata.ReplicationRule) (*Copier, error) {
	dest := Endpoint{URL: r.URL, Prefix: r.DestPrefix, Username: r.Username}
	if r.SealedPassword != "" {
		if s.sealer == nil {
			return nil, s.keyErr
		}
		pw, err := s.sealer.Open(r.SealedPassword, aad(r.ID))
		if err != nil {
			return nil, err
		}
		dest.Password = pw
	}
	return &Copier{Source: s.source, Dest: dest, Transport: s.transport}, nil
}

// Matches reports whether rule pattern covers repository repo.
func Matches(pattern, repo string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(repo, p)
	}
	return repo == pattern
}

// ReconcileAll reconciles every rule's repositories, recording each
// rule's run; it returns the rules' failures joined.
func (s *Service) ReconcileAll(ctx context.Context) error {
	rules, err := s.store.ListReplicationRules(ctx, "")
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return nil
	}
	reg, err := s.source.repo("x")
	if err != nil {
		return err
	}
	repos, err := remote.Catalog(ctx, reg.Registry, remote.WithAuth(s.source.auth()), remote.WithTransport(s.transportOrDefault()))
	if err != nil {
		return fmt.Errorf("list source repositories: %w", err)
	}
	return s.runRules(ctx, rules, func(r metadata.ReplicationRule) error { return s.reconcileRule(ctx, r, repos) })
}

// runRules runs fn for each rule and records each run's outcome as the
// rule's status; a rule deleted meanwhile has no status to keep.
func (s *Service) runRules(ctx context.Context, rules []metadata.ReplicationRule, fn func(metadata.ReplicationRule) error) error {
	var errs []error
	for _, r := range rules {
		err := fn(r)
		reason := ""
		if err != nil {
			reason = err.Error()
			errs = append(errs, fmt.Errorf("rule %d: %w", r.ID, err))
		}
		if err := s.store.RecordReplicationRun(ctx, r.ID, s.now(), reason); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) transportOrDefault() http.RoundTripper {
	if s.transport == nil {
		return http.DefaultTransport
	}
	return s.transport
}

func (s *Service) reconcileRule(ctx context.Context, r metadata.ReplicationRule, repos []string) error {
	c, err := s.copier(r)
	if err != nil {
		return err
	}
	var errs []error
	for _, repo := range repos {
		if !Matches(r.Pattern, repo) {
			continue
		}
		if _, err := c.Reconcile(ctx, repo); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Apply replicates one event of the outbox (a push, a tag moved, a
// delete) to every rule that covers its repository, recording each
// rule's run. A delete of a tag deletes that tag at the destination; a
// delete by digest deletes the manifest there, where it is allowed.
func (s *Service) Apply(ctx context.Context, e metadata.Event) error {
	ref := e.Tag
	if ref == "" {
		ref = e.Digest.String()
	}
	if e.Repo == "" || ref == "" {
		return nil
	}
	rules, err := s.store.ListReplicationRules(ctx, "")
	if err != nil {
		return err
	}
	covering := rules[:0]
	for _, r := range rules {
		if Matches(r.Pattern, e.Repo) {
			covering = append(covering, r)
		}
	}
	return s.runRules(ctx, covering, func(r metadata.ReplicationRule) error { return s.applyRule(ctx, r, e.Action, e.Repo, ref) })
}

func (s *Service) applyRule(ctx context.Context, r metadata.ReplicationRule, action, repo, ref string) error {
	c, err := s.copier(r)
	if err != nil {
		return err
	}
	switch action {
	case metadata.EventPush, metadata.EventTag:
		_, err = c.Copy(ctx, repo, ref)
	case metadata.EventDelete:
		err = c.Delete(ctx, repo, ref)
	}
	return err
}
