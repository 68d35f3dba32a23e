package replicate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/egress"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry"
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

// Service keeps replication rules and runs them: the outbox's tasks as
// they are due (ReplicateDue, Run) and the reconcile.
type Service struct {
	store metadata.ReplicationStore
	// sealer is nil when no secret key could be found: rules without a
	// password still work, storing one is refused.
	sealer *secretkey.Sealer
	keyErr error
	// Source is this registry as the copier reaches it.
	source Endpoint
	opts   Options
	log    *slog.Logger
	mounts *Mounts
	// worker names this process's leases on tasks.
	worker string
	// reconcileNow queues the rules an admin asked to reconcile.
	reconcileNow chan int64
	stats        stats
}

// NewService returns a Service storing rules in store, sealing passwords
// with the key secretkey.LoadKey found (or keyErr, reported when a password must be
// stored), copying from source.
func NewService(store metadata.ReplicationStore, key []byte, keyErr error, source Endpoint, opts Options) (*Service, error) {
	opts.defaults()
	s := &Service{store: store, keyErr: keyErr, source: source, opts: opts, log: opts.Log,
		mounts: NewMounts(mountMemory), worker: "repl-" + rand.Text()[:16], reconcileNow: make(chan int64, 16)}
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

// Errors of the Service, for handlers to map onto responses.
var (
	// ErrInvalid is a rule refused; the message says why.
	ErrInvalid = errors.New("invalid replication rule")
	// ErrNotFound is no such rule in the namespace.
	ErrNotFound = errors.New("no such replication rule")
	// ErrBusy is a reconcile refused because many wait already.
	ErrBusy = errors.New("too many reconciles waiting")
)

// validate checks spec and returns the pattern it stands for in ns.
func (s *Service) validate(ns string, spec RuleSpec) (string, error) {
	if _, err := (Endpoint{URL: spec.URL, Prefix: spec.DestPrefix}).repo(ns + "/x"); err != nil {
		return "", fmt.Errorf("%w: destination: %w", ErrInvalid, err)
	}
	if !s.opts.AllowInternal {
		if err := egress.CheckURL(spec.URL); err != nil {
			return "", fmt.Errorf("%w: destination: %w", ErrInvalid, err)
		}
	}
	if spec.Repositories != "" && !validRepositories(spec.Repositories) {
		return "", fmt.Errorf("%w: repositories %q: want a name, or a prefix ending in *", ErrInvalid, spec.Repositories)
	}
	if spec.Password != "" && s.sealer == nil {
		if s.keyErr == nil {
			s.keyErr = secretkey.ErrNoKey
		}
		return "", s.keyErr
	}
	if spec.Repositories == "" {
		return ns + "/*", nil
	}
	return ns + "/" + spec.Repositories, nil
}

// validRepositories reports whether r names repositories under a
// namespace: lower-case name components, with at most a final '*'.
func validRepositories(r string) bool {
	r = strings.TrimSuffix(r, "*")
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/", c)) {
			return false
		}
	}
	return !strings.Contains(r, "..") && !strings.HasPrefix(r, "/")
}

// CreateRule validates spec and stores it as a rule of namespace ns.
func (s *Service) CreateRule(ctx context.Context, ns string, spec RuleSpec, actor string) (int64, error) {
	pattern, err := s.validate(ns, spec)
	if err != nil {
		return 0, err
	}
	id, err := s.store.CreateReplicationRule(ctx, &metadata.ReplicationRule{Namespace: ns, Pattern: pattern,
		URL: spec.URL, DestPrefix: spec.DestPrefix, Username: spec.Username, CreatedBy: actor})
	if err != nil {
		return 0, err
	}
	s.log.InfoContext(ctx, "replication rule created", "namespace", ns, "rule", id, "url", spec.URL, "user", actor)
	if spec.Password == "" {
		return id, nil
	}
	// Sealed against the ID, which exists only now.
	if err := s.store.SetReplicationPassword(ctx, id, s.sealer.Seal(spec.Password, aad(id))); err != nil {
		_ = s.store.DeleteReplicationRule(ctx, id)
		return 0, err
	}
	return id, nil
}

// Rule is a rule as its owners see it: the sealed password stays behind
// (credentials are write-only), whether there is one does not.
type Rule struct {
	metadata.ReplicationRule
	HasPassword bool
	// Lag is the age of the oldest event not yet replicated, 0 when none.
	Lag time.Duration
}

func (s *Service) shown(r metadata.ReplicationRule) Rule {
	out := Rule{ReplicationRule: r, HasPassword: r.SealedPassword != ""}
	out.SealedPassword = ""
	if !r.Oldest.IsZero() {
		out.Lag = max(s.opts.Now().Sub(r.Oldest), 0)
	}
	return out
}

// Rules lists namespace ns's rules with their status.
func (s *Service) Rules(ctx context.Context, ns string) ([]Rule, error) {
	rules, err := s.store.ListReplicationRules(ctx, ns)
	if err != nil {
		return nil, err
	}
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		out = append(out, s.shown(r))
	}
	return out, nil
}

// Rule returns namespace ns's rule id with its status, or ErrNotFound.
func (s *Service) Rule(ctx context.Context, ns string, id int64) (*Rule, error) {
	r, err := s.store.GetReplicationRule(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) || err == nil && r.Namespace != ns {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	shown := s.shown(*r)
	return &shown, nil
}

// UpdateRule replaces namespace ns's rule id with spec. An empty password
// keeps the stored one: a client never reads it back to send it again.
func (s *Service) UpdateRule(ctx context.Context, ns string, id int64, spec RuleSpec) error {
	if _, err := s.Rule(ctx, ns, id); err != nil {
		return err
	}
	pattern, err := s.validate(ns, spec)
	if err != nil {
		return err
	}
	err = s.store.UpdateReplicationRule(ctx, &metadata.ReplicationRule{ID: id, Pattern: pattern, URL: spec.URL,
		DestPrefix: spec.DestPrefix, Username: spec.Username})
	if err == nil && spec.Password != "" {
		err = s.store.SetReplicationPassword(ctx, id, s.sealer.Seal(spec.Password, aad(id)))
	}
	if errors.Is(err, metadata.ErrNotFound) {
		return ErrNotFound
	}
	if err == nil {
		s.log.InfoContext(ctx, "replication rule changed", "namespace", ns, "rule", id, "url", spec.URL,
			"password_changed", spec.Password != "", "user", registry.Actor(ctx))
	}
	return err
}

// DeleteRule removes namespace ns's rule id and its backlog.
func (s *Service) DeleteRule(ctx context.Context, ns string, id int64) error {
	if _, err := s.Rule(ctx, ns, id); err != nil {
		return err
	}
	if err := s.store.DeleteReplicationRule(ctx, id); errors.Is(err, metadata.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "replication rule deleted", "namespace", ns, "rule", id, "user", registry.Actor(ctx))
	return nil
}

// Reconcile asks for namespace ns's rule id to be reconciled soon by
// this process's worker; ErrBusy when too many requests wait already.
func (s *Service) Reconcile(ctx context.Context, ns string, id int64) error {
	if _, err := s.Rule(ctx, ns, id); err != nil {
		return err
	}
	if !s.RequestReconcile(id) {
		return ErrBusy
	}
	s.log.InfoContext(ctx, "replication reconcile requested", "namespace", ns, "rule", id, "user", registry.Actor(ctx))
	return nil
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
	t := s.opts.Transport
	if t == nil {
		t = http.DefaultTransport
	}
	return &Copier{Source: s.source, Dest: dest, Transport: countingTransport{next: t, n: &s.stats.of(r.ID).bytes},
		SourceTransport: s.opts.SourceTransport, Mounts: s.mounts}, nil
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
	repos, err := s.catalog(ctx)
	if err != nil {
		return err
	}
	return s.runRules(ctx, rules, func(r metadata.ReplicationRule) error { return s.reconcileRule(ctx, r, repos) })
}

// ReconcileRule reconciles rule id's repositories, recording its run.
func (s *Service) ReconcileRule(ctx context.Context, id int64) error {
	r, err := s.store.GetReplicationRule(ctx, id)
	if err != nil {
		return err
	}
	repos, err := s.catalog(ctx)
	if err != nil {
		return err
	}
	return s.runRules(ctx, []metadata.ReplicationRule{*r}, func(r metadata.ReplicationRule) error { return s.reconcileRule(ctx, r, repos) })
}

// catalog lists the source's repositories.
func (s *Service) catalog(ctx context.Context) ([]string, error) {
	reg, err := s.source.repo("x")
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, reg.Registry, remote.WithAuth(s.source.auth()), remote.WithTransport(s.sourceTransport()))
	if err != nil {
		return nil, fmt.Errorf("list source repositories: %w", err)
	}
	return repos, nil
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
		if err := s.store.RecordReplicationRun(ctx, r.ID, s.opts.Now(), reason); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Service) sourceTransport() http.RoundTripper {
	switch {
	case s.opts.SourceTransport != nil:
		return s.opts.SourceTransport
	case s.opts.Transport != nil:
		return s.opts.Transport
	}
	return http.DefaultTransport
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
