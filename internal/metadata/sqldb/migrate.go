package sqldb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// migrations are applied in order, each once, inside a transaction. Append
// only: never edit a migration that has shipped.
var migrations = []string{
	`CREATE TABLE repositories (
		id         INTEGER PRIMARY KEY,
		name       TEXT NOT NULL UNIQUE,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE repo_blobs (
		repo_id    INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
		digest     TEXT NOT NULL,
		size       BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (repo_id, digest)
	);
	CREATE INDEX repo_blobs_digest ON repo_blobs(digest);
	CREATE TABLE manifests (
		repo_id       INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
		digest        TEXT NOT NULL,
		media_type    TEXT NOT NULL,
		content       BLOB NOT NULL,
		size          BIGINT NOT NULL,
		artifact_type TEXT NOT NULL DEFAULT '',
		subject       TEXT NOT NULL DEFAULT '',
		annotations   TEXT NOT NULL DEFAULT '',
		created_at    BIGINT NOT NULL,
		PRIMARY KEY (repo_id, digest)
	);
	CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject <> '';
	CREATE TABLE manifest_refs (
		repo_id INTEGER NOT NULL,
		parent  TEXT NOT NULL,
		child   TEXT NOT NULL,
		kind    TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
		PRIMARY KEY (repo_id, parent, kind, child),
		FOREIGN KEY (repo_id, parent) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
	);
	CREATE INDEX manifest_refs_child ON manifest_refs(repo_id, child);
	CREATE TABLE tags (
		repo_id    INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
		name       TEXT NOT NULL,
		digest     TEXT NOT NULL,
		pushed_at  BIGINT NOT NULL,
		PRIMARY KEY (repo_id, name),
		FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
	);
	CREATE INDEX tags_digest ON tags(repo_id, digest);
	CREATE TABLE uploads (
		id         TEXT PRIMARY KEY,
		repo       TEXT NOT NULL,
		algorithm  TEXT NOT NULL,
		"offset"   BIGINT NOT NULL,
		hash_state BLOB NOT NULL,
		started_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);`,
	// 2: accounts, organisations, visibility, tokens and signing keys
	// (internal/auth). Users and organisations share one namespace:
	// CreateUser and CreateOrg check the other table in their transaction.
	`CREATE TABLE users (
		name          TEXT PRIMARY KEY,
		password_hash TEXT NOT NULL,
		is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
		created_at    BIGINT NOT NULL
	);
	CREATE TABLE orgs (
		name       TEXT PRIMARY KEY,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE org_members (
		org       TEXT NOT NULL REFERENCES orgs(name) ON DELETE CASCADE,
		user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
		role      TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
		PRIMARY KEY (org, user_name)
	);
	CREATE INDEX org_members_user ON org_members(user_name);
	CREATE TABLE repo_visibility (
		repo       TEXT PRIMARY KEY,
		visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private'))
	);
	CREATE TABLE access_tokens (
		id         TEXT PRIMARY KEY,
		user_name  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
		kind       TEXT NOT NULL CHECK (kind IN ('pat', 'refresh')),
		name       TEXT NOT NULL,
		scope      TEXT NOT NULL,
		hash       BLOB NOT NULL UNIQUE,
		parent     TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL DEFAULT 0,
		last_used  BIGINT NOT NULL DEFAULT 0,
		revoked_at BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX access_tokens_user ON access_tokens(user_name, kind);
	CREATE TABLE signing_keys (
		id          TEXT PRIMARY KEY,
		private_key BLOB NOT NULL,
		created_at  BIGINT NOT NULL,
		retired_at  BIGINT NOT NULL DEFAULT 0
	);`,
	// 3: what the web UI and the Hub-style API show: who pushed each tag,
	// when a tag was last pulled, and per repository a description, a
	// readme and a pull count (flushed in batches, never per pull). The
	// pushed_at index serves "newest first, then by name" pages of huge
	// repositories without sorting them.
	`ALTER TABLE tags ADD COLUMN pushed_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE tags ADD COLUMN last_pulled BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX tags_pushed_at ON tags(repo_id, pushed_at DESC, name);
	CREATE TABLE repo_info (
		repo_id     INTEGER PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
		description TEXT NOT NULL DEFAULT '',
		readme      TEXT NOT NULL DEFAULT '',
		pull_count  BIGINT NOT NULL DEFAULT 0,
		last_pulled BIGINT NOT NULL DEFAULT 0
	);`,
	// 4: garbage collection asks, for each stored blob, whether any
	// manifest of any repository references it.
	`CREATE INDEX manifest_refs_blob ON manifest_refs(child) WHERE kind = 'blob';`,
	// 5: what /metrics reports, kept up to date by every write that adds or
	// removes a blob link (stats.go) so that a scrape reads one row instead
	// of grouping every link. linked_blobs counts each digest's links, so
	// that the last unlink of a digest is known without a scan, and its row
	// lock orders concurrent writers of one digest on PostgreSQL.
	`CREATE TABLE linked_blobs (
		digest TEXT PRIMARY KEY,
		size   BIGINT NOT NULL,
		links  BIGINT NOT NULL
	);
	INSERT INTO linked_blobs (digest, size, links)
		SELECT digest, MAX(size), COUNT(*) FROM repo_blobs GROUP BY digest;
	CREATE TABLE blob_totals (
		id    INTEGER PRIMARY KEY CHECK (id = 1),
		blobs BIGINT NOT NULL,
		bytes BIGINT NOT NULL
	);
	INSERT INTO blob_totals (id, blobs, bytes)
		SELECT 1, COUNT(*), COALESCE(SUM(size), 0) FROM linked_blobs;`,
	// 6: the blob store's state of an upload (blobstore.State), written
	// with the offset so that any replica can continue any upload.
	`ALTER TABLE uploads ADD COLUMN store_state BLOB;`,
	// 7: every stored blob, with the time a push or mount last relied on
	// its bytes (gcblobs.go): garbage collection finds unreferenced bytes
	// here, on any blob store, instead of by listing it, and the row is
	// what a collection and a push of the same blob serialise on. Existing
	// blobs are those linked or referenced (sizes of referenced but
	// unlinked blobs are unknown: 0). Bytes that nothing recorded (an
	// upload committed by a push that died before linking it) stay out of
	// reach of a collection on a store that cannot be walked.
	`CREATE TABLE blobs (
		digest  TEXT PRIMARY KEY,
		size    BIGINT NOT NULL,
		used_at BIGINT NOT NULL
	);
	INSERT INTO blobs (digest, size, used_at)
		SELECT digest, MAX(size), MAX(created_at) FROM repo_blobs GROUP BY digest;
	INSERT INTO blobs (digest, size, used_at)
		SELECT DISTINCT child, 0, 0 FROM manifest_refs
		WHERE kind = 'blob' AND child NOT IN (SELECT digest FROM blobs);`,
	// 8: failed-login counters (auth.FailureStore), here so that replicas
	// share them. The key (an account, a client address, or both, as the
	// client sent them) is kept as its SHA-256: bounded in size, and no
	// list of addresses and user names at rest.
	`CREATE TABLE login_failures (
		key_hash    BLOB PRIMARY KEY,
		failures    BIGINT NOT NULL,
		last_failed BIGINT NOT NULL
	);
	CREATE INDEX login_failures_last ON login_failures(last_failed);`,
	// 9: the write lease of an upload session (metadata.UploadLeaser):
	// the token of the writer that claimed it and when the claim lapses
	// ("" and 0 when no writer holds it).
	`ALTER TABLE uploads ADD COLUMN writer TEXT NOT NULL DEFAULT '';
	ALTER TABLE uploads ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;`,
	// 10: policies, per repository or namespace glob (policy.go), and the
	// counter every change of them moves: each process caches the
	// policies and reads only the counter on a push.
	`CREATE TABLE policies (
		pattern TEXT NOT NULL,
		key     TEXT NOT NULL,
		value   TEXT NOT NULL,
		set_by  TEXT NOT NULL DEFAULT '',
		set_at  BIGINT NOT NULL,
		PRIMARY KEY (pattern, key)
	);
	CREATE TABLE policy_version (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		version BIGINT NOT NULL
	);
	INSERT INTO policy_version (id, version) VALUES (1, 0);`,
	// 11: image lineage (lineage.go): per image manifest its layer
	// chains, whether it is golden and the base it was found built on.
	// A push looks its chains up among golden images only (the partial
	// index), so its cost does not grow with the images stored; "used by"
	// reads one base's derived images; a backfill finds base-less images
	// by their first layer.
	`CREATE TABLE image_lineage (
		repo_id     INTEGER NOT NULL,
		digest      TEXT NOT NULL,
		chain       TEXT NOT NULL,
		first_chain TEXT NOT NULL,
		layers      INTEGER NOT NULL,
		golden      BOOLEAN NOT NULL DEFAULT FALSE,
		base_repo   TEXT NOT NULL DEFAULT '',
		base_digest TEXT NOT NULL DEFAULT '',
		base_tags   TEXT NOT NULL DEFAULT '',
		base_layers INTEGER NOT NULL DEFAULT 0,
		source      TEXT NOT NULL DEFAULT '',
		note        TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (repo_id, digest),
		FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
	);
	CREATE INDEX image_lineage_golden ON image_lineage(chain) WHERE golden;
	CREATE INDEX image_lineage_base ON image_lineage(base_repo, base_digest) WHERE base_repo <> '';
	CREATE INDEX image_lineage_baseless ON image_lineage(first_chain) WHERE base_repo = '';`,
	// 12: webhooks and their outbox (webhooks.go). A write that changes a
	// repository inserts a delivery per subscribed hook in its own
	// transaction; workers lease them (claimed_by, claimed_until). A
	// hook's pattern is kept as the prefix a write compares in SQL. The
	// partial indexes keep a claim to the pending rows, however many
	// delivered ones are kept: its scan in ID order (due) and its "no
	// earlier pending delivery of this hook and repository" (pending).
	`CREATE TABLE webhooks (
		id           INTEGER PRIMARY KEY,
		namespace    TEXT NOT NULL,
		pattern      TEXT NOT NULL,
		match_prefix TEXT NOT NULL,
		match_exact  BOOLEAN NOT NULL,
		url          TEXT NOT NULL,
		events       TEXT NOT NULL,
		format       TEXT NOT NULL,
		secrets      TEXT NOT NULL,
		created_by   TEXT NOT NULL DEFAULT '',
		created_at   BIGINT NOT NULL
	);
	CREATE INDEX webhooks_namespace ON webhooks(namespace);
	CREATE TABLE webhook_deliveries (
		id            INTEGER PRIMARY KEY,
		hook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
		event_id      TEXT NOT NULL,
		action        TEXT NOT NULL,
		repo          TEXT NOT NULL,
		digest        TEXT NOT NULL DEFAULT '',
		media_type    TEXT NOT NULL DEFAULT '',
		size          BIGINT NOT NULL DEFAULT 0,
		tag           TEXT NOT NULL DEFAULT '',
		actor         TEXT NOT NULL DEFAULT '',
		pulls         BIGINT NOT NULL DEFAULT 0,
		detail        TEXT NOT NULL DEFAULT '',
		created_at    BIGINT NOT NULL,
		state         TEXT NOT NULL DEFAULT 'pending',
		attempts      INTEGER NOT NULL DEFAULT 0,
		next_at       BIGINT NOT NULL,
		claimed_by    TEXT NOT NULL DEFAULT '',
		claimed_until BIGINT NOT NULL DEFAULT 0,
		last_error    TEXT NOT NULL DEFAULT '',
		delivered_at  BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(hook_id, repo, id) WHERE state = 'pending';
	CREATE INDEX webhook_deliveries_due ON webhook_deliveries(id) WHERE state = 'pending';
	CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(hook_id, id);
	CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries(delivered_at) WHERE state = 'delivered';`,
	// 13: the parents of a child (which index lists this image, which
	// manifests use this blob in a repository) come from one covering
	// index. On (repo_id, child) alone SQLite preferred the primary key,
	// reading every reference of the repository for each child: "used
	// by" of a base with 10,000 derived images read millions of rows.
	`CREATE INDEX manifest_refs_parents ON manifest_refs(repo_id, child, kind, parent);
	DROP INDEX manifest_refs_child;`,
	// 14: background jobs (jobs.go): the lease that lets one replica at a
	// time run a job, with the job's last start (its schedule, shared by
	// the replicas), and the report of every run, of any kind of job.
	`CREATE TABLE job_leases (
		name        TEXT PRIMARY KEY,
		holder      TEXT NOT NULL,
		lease_until BIGINT NOT NULL,
		started_at  BIGINT NOT NULL
	);
	CREATE TABLE job_runs (
		id          INTEGER PRIMARY KEY,
		kind        TEXT NOT NULL,
		started_by  TEXT NOT NULL DEFAULT '',
		replica     TEXT NOT NULL DEFAULT '',
		started_at  BIGINT NOT NULL,
		finished_at BIGINT NOT NULL DEFAULT 0,
		outcome     TEXT NOT NULL,
		manifests   BIGINT NOT NULL DEFAULT 0,
		blobs       BIGINT NOT NULL DEFAULT 0,
		links       BIGINT NOT NULL DEFAULT 0,
		bytes       BIGINT NOT NULL DEFAULT 0,
		error_text  TEXT NOT NULL DEFAULT '',
		summary     TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX job_runs_kind ON job_runs(kind, id);`,
	// 15: tag history (taghistory.go): one row per move or delete of a tag, written in the
	// transaction of the tag write. keep_until is fixed when the row is
	// written (the tag-history policy then in effect), so that garbage
	// collection holds the manifest a row names with one indexed
	// comparison, without reading policies.
	`CREATE TABLE tag_history (
		id          INTEGER PRIMARY KEY,
		repo_id     INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
		tag         TEXT NOT NULL,
		from_digest TEXT NOT NULL DEFAULT '',
		to_digest   TEXT NOT NULL DEFAULT '',
		actor       TEXT NOT NULL DEFAULT '',
		via         TEXT NOT NULL,
		changed_at  BIGINT NOT NULL,
		keep_until  BIGINT NOT NULL
	);
	CREATE INDEX tag_history_tag ON tag_history(repo_id, tag, id);
	CREATE INDEX tag_history_from ON tag_history(repo_id, from_digest, keep_until) WHERE from_digest <> '';
	CREATE INDEX tag_history_keep ON tag_history(keep_until);`,
	// 16: storage used per repository and per namespace (usage.go), kept
	// by the writes of blob links as blob_totals is, so that a quota check
	// or a usage bar reads one row. namespace_blobs counts each digest's
	// links within a namespace: a namespace counts a blob once.
	`CREATE TABLE repo_usage (
		repo_id INTEGER PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
		blobs   BIGINT NOT NULL,
		bytes   BIGINT NOT NULL
	);
	CREATE TABLE namespace_blobs (
		namespace TEXT NOT NULL,
		digest    TEXT NOT NULL,
		size      BIGINT NOT NULL,
		links     BIGINT NOT NULL,
		PRIMARY KEY (namespace, digest)
	);
	CREATE TABLE namespace_usage (
		namespace TEXT PRIMARY KEY,
		blobs     BIGINT NOT NULL,
		bytes     BIGINT NOT NULL
	);
	` + recountRepoUsage + `;
	` + recountNamespaceBlobs + `;
	` + recountNamespaceUsage + `;`,
	// 17: retention (internal/registry/retention): a report per run. Its
	// scheduled run takes its lease in job_leases (14).
	`CREATE TABLE retention_runs (
		id                INTEGER PRIMARY KEY,
		started_at        BIGINT NOT NULL,
		finished_at       BIGINT NOT NULL,
		trigger_kind      TEXT NOT NULL,
		actor             TEXT NOT NULL DEFAULT '',
		scope             TEXT NOT NULL,
		repositories      BIGINT NOT NULL,
		deleted_tags      BIGINT NOT NULL,
		deleted_manifests BIGINT NOT NULL,
		failures          BIGINT NOT NULL,
		report            BLOB NOT NULL
	);`,
	// 18: replication rules (replication.go). The password column holds
	// only what the replicate package sealed under the secret key.
	`CREATE TABLE replication_rules (
		id          INTEGER PRIMARY KEY,
		namespace   TEXT NOT NULL,
		pattern     TEXT NOT NULL,
		url         TEXT NOT NULL,
		dest_prefix TEXT NOT NULL DEFAULT '',
		username    TEXT NOT NULL DEFAULT '',
		password    TEXT NOT NULL DEFAULT '',
		created_by  TEXT NOT NULL DEFAULT '',
		created_at  BIGINT NOT NULL,
		last_run_at BIGINT NOT NULL DEFAULT 0,
		last_ok_at  BIGINT NOT NULL DEFAULT 0,
		last_error  TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX replication_rules_namespace ON replication_rules(namespace);`,
	// 19: replication's outbox (replication.go): a write that changes a
	// repository inserts a task per covering rule in its own transaction,
	// as webhook deliveries are; a task done is deleted, so the table
	// holds only the backlog (a rule's lag is its oldest row). failures
	// counts a rule's failed attempts and reconciles.
	`ALTER TABLE replication_rules ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
	CREATE TABLE replication_tasks (
		id            INTEGER PRIMARY KEY,
		rule_id       INTEGER NOT NULL REFERENCES replication_rules(id) ON DELETE CASCADE,
		action        TEXT NOT NULL,
		repo          TEXT NOT NULL,
		digest        TEXT NOT NULL DEFAULT '',
		tag           TEXT NOT NULL DEFAULT '',
		created_at    BIGINT NOT NULL,
		attempts      INTEGER NOT NULL DEFAULT 0,
		next_at       BIGINT NOT NULL,
		claimed_by    TEXT NOT NULL DEFAULT '',
		claimed_until BIGINT NOT NULL DEFAULT 0,
		last_error    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX replication_tasks_queue ON replication_tasks(rule_id, repo, id);`,
	// 20: retention's run reports join the job runs (kind 'retention'), so
	// that one list has every job's runs; what only retention counts goes
	// in the summary, and its report of each deletion in details. The
	// summary is built by concatenation: actors and scopes are account
	// names and repository patterns, which hold no character JSON escapes.
	`ALTER TABLE job_runs ADD COLUMN details BLOB NOT NULL DEFAULT '';
	INSERT INTO job_runs (kind, started_by, replica, started_at, finished_at, outcome, manifests, error_text, summary, details)
	SELECT 'retention', trigger_kind, '', started_at, finished_at,
		CASE WHEN failures > 0 THEN 'failed' ELSE 'ok' END, deleted_manifests,
		CASE WHEN failures > 0 THEN failures || ' deletions failed' ELSE '' END,
		'{"actor":"' || actor || '","scope":"' || scope || '","repositories":' || repositories ||
			',"deleted_tags":' || deleted_tags || ',"deleted_manifests":' || deleted_manifests || ',"failures":' || failures || '}',
		report
	FROM retention_runs ORDER BY id;
	DROP TABLE retention_runs;`,
	// 21: upload sessions that ended without ever having a row of their
	// own in uploads, or after it (endeduploads.go): their signed ids must
	// not start a new session again until they expire.
	`CREATE TABLE ended_uploads (
		id         TEXT PRIMARY KEY,
		repo       TEXT NOT NULL,
		started_at BIGINT NOT NULL
	);
	CREATE INDEX ended_uploads_started ON ended_uploads(started_at);`,
	// 22: the tags built on each base (lineage.go's derived rows), kept
	// by every write of a tag or of a lineage, so that "used by" pages a
	// range of the primary key (and counts one) instead of joining a
	// base's every derived image to its tags and sorting them. repo is
	// the derived repository's name: the page's order. image is the
	// image (or the platform of the index the tag points at) built on
	// the base; the foreign keys take a row with its tag or its lineage.
	`CREATE TABLE derived_tags (
		base_repo   TEXT NOT NULL,
		base_digest TEXT NOT NULL,
		repo        TEXT NOT NULL,
		tag         TEXT NOT NULL,
		repo_id     INTEGER NOT NULL,
		image       TEXT NOT NULL,
		PRIMARY KEY (base_repo, base_digest, repo, tag),
		FOREIGN KEY (repo_id, tag) REFERENCES tags(repo_id, name) ON DELETE CASCADE,
		FOREIGN KEY (repo_id, image) REFERENCES image_lineage(repo_id, digest) ON DELETE CASCADE
	);
	CREATE INDEX derived_tags_repo ON derived_tags(base_repo, repo, tag);
	CREATE INDEX derived_tags_tag ON derived_tags(repo_id, tag);
	CREATE INDEX derived_tags_image ON derived_tags(repo_id, image);` + deriveAllTags,
	// 23: the bytes of small blobs, kept in their record (smallblobs.go)
	// instead of the blob store when a push carries them whole: NULL for
	// every blob the blob store holds. The index lets a collection on a
	// blob store it walks find the others without reading every record.
	`ALTER TABLE blobs ADD COLUMN content BLOB;
	CREATE INDEX blobs_small ON blobs(digest) WHERE content IS NOT NULL;`,
	// 24: the bytes of an upload session whose first chunk was small,
	// kept in its record until its commit moves them to the blob's
	// (registry/smallblobs.go); NULL while the blob store holds them.
	`ALTER TABLE uploads ADD COLUMN content BLOB;`,
	// 25: the lineage tables cost a push fewer b-trees. On SQLite each
	// becomes WITHOUT ROWID, its primary key the table itself (PostgreSQL
	// keeps heaps: the copy there only renames). image_lineage loses its
	// base index, which only "stop being golden" read (a rare scan now);
	// derived_tags' primary key takes the page order of "used by"
	// (base, repository, tag), which a base digest filters, so that one
	// index serves both forms of the page. The golden index holds each
	// golden image's length, so that a push's chain lookup reads the
	// index alone. derived_tags is derived: it is dropped and written
	// again.
	`DROP TABLE derived_tags;
	CREATE TABLE image_lineage_keyed (
		repo_id     INTEGER NOT NULL,
		digest      TEXT NOT NULL,
		chain       TEXT NOT NULL,
		first_chain TEXT NOT NULL,
		layers      INTEGER NOT NULL,
		golden      BOOLEAN NOT NULL DEFAULT FALSE,
		base_repo   TEXT NOT NULL DEFAULT '',
		base_digest TEXT NOT NULL DEFAULT '',
		base_tags   TEXT NOT NULL DEFAULT '',
		base_layers INTEGER NOT NULL DEFAULT 0,
		source      TEXT NOT NULL DEFAULT '',
		note        TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (repo_id, digest),
		FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
	) WITHOUT ROWID;
	INSERT INTO image_lineage_keyed (repo_id, digest, chain, first_chain, layers, golden, base_repo, base_digest, base_tags, base_layers, source, note)
	SELECT repo_id, digest, chain, first_chain, layers, golden, base_repo, base_digest, base_tags, base_layers, source, note FROM image_lineage;
	DROP TABLE image_lineage;
	ALTER TABLE image_lineage_keyed RENAME TO image_lineage;
	CREATE INDEX image_lineage_golden ON image_lineage(chain, layers) WHERE golden;
	CREATE INDEX image_lineage_baseless ON image_lineage(first_chain) WHERE base_repo = '';
	CREATE TABLE derived_tags (
		base_repo   TEXT NOT NULL,
		base_digest TEXT NOT NULL,
		repo        TEXT NOT NULL,
		tag         TEXT NOT NULL,
		repo_id     INTEGER NOT NULL,
		image       TEXT NOT NULL,
		PRIMARY KEY (base_repo, repo, tag, base_digest),
		FOREIGN KEY (repo_id, tag) REFERENCES tags(repo_id, name) ON DELETE CASCADE,
		FOREIGN KEY (repo_id, image) REFERENCES image_lineage(repo_id, digest) ON DELETE CASCADE
	) WITHOUT ROWID;
	CREATE INDEX derived_tags_tag ON derived_tags(repo_id, tag);
	CREATE INDEX derived_tags_image ON derived_tags(repo_id, image);` + deriveAllTags,
	// 26: a derived row costs a push one b-tree less: derived_tags loses
	// its index by image and the foreign key it served, which took a row
	// with its image's lineage (both back in 28, once 27 took the rows of
	// tags on images out of the table: the key is what keeps a concurrent
	// write on PostgreSQL from leaving a row that names a deleted image).
	`DROP TABLE derived_tags;
	CREATE TABLE derived_tags (
		base_repo   TEXT NOT NULL,
		base_digest TEXT NOT NULL,
		repo        TEXT NOT NULL,
		tag         TEXT NOT NULL,
		repo_id     INTEGER NOT NULL,
		image       TEXT NOT NULL,
		PRIMARY KEY (base_repo, repo, tag, base_digest),
		FOREIGN KEY (repo_id, tag) REFERENCES tags(repo_id, name) ON DELETE CASCADE
	) WITHOUT ROWID;
	CREATE INDEX derived_tags_tag ON derived_tags(repo_id, tag);` + deriveAllTags,
	// 27: the derived row of a tag on an image is the tag's own row: its
	// image's base (base_repo, base_digest) and its repository's name
	// (repo_name, the order of a "used by" page), written with the tag,
	// and a partial index that only such tags enter. derived_tags keeps
	// the rows of tags on indexes, one per base of their platforms. A
	// push of an image built on a golden one writes one b-tree for its
	// tag's derivation (the index) where it wrote two and a statement.
	`ALTER TABLE tags ADD COLUMN base_repo TEXT NOT NULL DEFAULT '';
	ALTER TABLE tags ADD COLUMN base_digest TEXT NOT NULL DEFAULT '';
	ALTER TABLE tags ADD COLUMN repo_name TEXT NOT NULL DEFAULT '';
	UPDATE tags SET base_repo = d.base_repo, base_digest = d.base_digest, repo_name = d.repo FROM derived_tags d
		WHERE d.repo_id = tags.repo_id AND d.tag = tags.name AND d.image = tags.digest;
	DELETE FROM derived_tags WHERE EXISTS (SELECT 1 FROM tags t
		WHERE t.repo_id = derived_tags.repo_id AND t.name = derived_tags.tag AND t.digest = derived_tags.image);
	CREATE INDEX tags_base ON tags(base_repo, repo_name, name, base_digest) WHERE base_repo <> '';`,
	// 28: derived_tags gets back its key to the lineage it names, and the
	// index by image that the key's cascade reads, which 26 dropped to
	// spare every push a b-tree: since 27 a push of an image writes no
	// derived_tags row, and the key is what keeps a tag on an index from
	// naming a deleted platform when the two writes race on PostgreSQL (a
	// delete cannot see the row another transaction is adding).
	`DROP TABLE derived_tags;
	CREATE TABLE derived_tags (
		base_repo   TEXT NOT NULL,
		base_digest TEXT NOT NULL,
		repo        TEXT NOT NULL,
		tag         TEXT NOT NULL,
		repo_id     INTEGER NOT NULL,
		image       TEXT NOT NULL,
		PRIMARY KEY (base_repo, repo, tag, base_digest),
		FOREIGN KEY (repo_id, tag) REFERENCES tags(repo_id, name) ON DELETE CASCADE,
		FOREIGN KEY (repo_id, image) REFERENCES image_lineage(repo_id, digest) ON DELETE CASCADE
	) WITHOUT ROWID;
	CREATE INDEX derived_tags_tag ON derived_tags(repo_id, tag);
	CREATE INDEX derived_tags_image ON derived_tags(repo_id, image);
	INSERT INTO derived_tags (base_repo, base_digest, repo, tag, repo_id, image)
	SELECT l.base_repo, l.base_digest, r.name, t.name, t.repo_id, l.digest FROM image_lineage l
		JOIN repositories r ON r.id = l.repo_id JOIN manifest_refs mr ON mr.repo_id = l.repo_id AND mr.child = l.digest AND mr.kind = 'manifest'
		JOIN tags t ON t.repo_id = l.repo_id AND t.digest = mr.parent
		WHERE l.base_repo <> '' ON CONFLICT DO NOTHING;`,
	// 29 (SQLite only): the tables a push writes that are keyed by text
	// are stored as their primary key (WITHOUT ROWID) instead of a rowid
	// table beside an index of the key. Every row a push adds to them then
	// writes one b-tree page where it wrote two, and SQLite writes each
	// page twice, to the WAL and at the checkpoint: a push of a small
	// image writes a tenth fewer bytes. No other table names these by a
	// foreign key, so they can be rebuilt inside the transaction.
	sqliteOnly(`CREATE TABLE repo_blobs_29 (
		repo_id    INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
		digest     TEXT NOT NULL,
		size       BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (repo_id, digest)
	) WITHOUT ROWID;
	INSERT INTO repo_blobs_29 (repo_id, digest, size, created_at) SELECT repo_id, digest, size, created_at FROM repo_blobs;
	DROP TABLE repo_blobs;
	ALTER TABLE repo_blobs_29 RENAME TO repo_blobs;
	CREATE INDEX repo_blobs_digest ON repo_blobs(digest);

	CREATE TABLE manifest_refs_29 (
		repo_id INTEGER NOT NULL,
		parent  TEXT NOT NULL,
		child   TEXT NOT NULL,
		kind    TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
		PRIMARY KEY (repo_id, parent, kind, child),
		FOREIGN KEY (repo_id, parent) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
	) WITHOUT ROWID;
	INSERT INTO manifest_refs_29 (repo_id, parent, child, kind) SELECT repo_id, parent, child, kind FROM manifest_refs;
	DROP TABLE manifest_refs;
	ALTER TABLE manifest_refs_29 RENAME TO manifest_refs;
	CREATE INDEX manifest_refs_blob ON manifest_refs(child) WHERE kind = 'blob';
	CREATE INDEX manifest_refs_parents ON manifest_refs(repo_id, child, kind, parent);

	CREATE TABLE linked_blobs_29 (
		digest TEXT PRIMARY KEY,
		size   BIGINT NOT NULL,
		links  BIGINT NOT NULL
	) WITHOUT ROWID;
	INSERT INTO linked_blobs_29 (digest, size, links) SELECT digest, size, links FROM linked_blobs;
	DROP TABLE linked_blobs;
	ALTER TABLE linked_blobs_29 RENAME TO linked_blobs;

	CREATE TABLE namespace_blobs_29 (
		namespace TEXT NOT NULL,
		digest    TEXT NOT NULL,
		size      BIGINT NOT NULL,
		links     BIGINT NOT NULL,
		PRIMARY KEY (namespace, digest)
	) WITHOUT ROWID;
	INSERT INTO namespace_blobs_29 (namespace, digest, size, links) SELECT namespace, digest, size, links FROM namespace_blobs;
	DROP TABLE namespace_blobs;
	ALTER TABLE namespace_blobs_29 RENAME TO namespace_blobs;

	CREATE TABLE namespace_usage_29 (
		namespace TEXT PRIMARY KEY,
		blobs     BIGINT NOT NULL,
		bytes     BIGINT NOT NULL
	) WITHOUT ROWID;
	INSERT INTO namespace_usage_29 (namespace, blobs, bytes) SELECT namespace, blobs, bytes FROM namespace_usage;
	DROP TABLE namespace_usage;
	ALTER TABLE namespace_usage_29 RENAME TO namespace_usage;

	CREATE TABLE ended_uploads_29 (
		id         TEXT PRIMARY KEY,
		repo       TEXT NOT NULL,
		started_at BIGINT NOT NULL
	) WITHOUT ROWID;
	INSERT INTO ended_uploads_29 (id, repo, started_at) SELECT id, repo, started_at FROM ended_uploads;
	DROP TABLE ended_uploads;
	ALTER TABLE ended_uploads_29 RENAME TO ended_uploads;
	CREATE INDEX ended_uploads_started ON ended_uploads(started_at);`),
}

// deriveAllTags writes the derived rows of every tag, as the migrations
// that (re)create derived_tags fill it: the tags of images built on a
// base, and the tags of indexes listing one.
const deriveAllTags = `
	INSERT INTO derived_tags (base_repo, base_digest, repo, tag, repo_id, image)
	SELECT * FROM (
		SELECT l.base_repo, l.base_digest, r.name, t.name, t.repo_id, l.digest FROM image_lineage l
		JOIN repositories r ON r.id = l.repo_id JOIN tags t ON t.repo_id = l.repo_id AND t.digest = l.digest
		WHERE l.base_repo <> ''
		UNION ALL
		SELECT l.base_repo, l.base_digest, r.name, t.name, t.repo_id, l.digest FROM image_lineage l
		JOIN repositories r ON r.id = l.repo_id JOIN manifest_refs mr ON mr.repo_id = l.repo_id AND mr.child = l.digest AND mr.kind = 'manifest'
		JOIN tags t ON t.repo_id = l.repo_id AND t.digest = mr.parent
		WHERE l.base_repo <> ''
	) AS d WHERE true ON CONFLICT DO NOTHING;`

// migrate applies pending migrations in one write transaction, reading the
// schema version inside it, so that several processes opening a new
// database at once apply each migration exactly once.
func (db *DB) migrate(ctx context.Context) error {
	var applied []int
	err := retryBusy(ctx, 10*time.Second, func() error {
		applied = applied[:0]
		// Once, not retried on PostgreSQL: the advisory lock, not a
		// retry, is what keeps replicas from racing (and the test that
		// they do not shows it).
		return db.inTxOnce(ctx, func(tx *stmtTx) error {
			return db.applyMigrations(ctx, tx, &applied)
		})
	})
	if err != nil {
		return err
	}
	for _, v := range applied {
		db.log.InfoContext(ctx, "metadata migration applied", "version", v)
	}
	return nil
}

// ErrSchemaTooNew means the database was migrated by a newer wharf.
var ErrSchemaTooNew = errors.New("database schema is newer than this wharf")

func (db *DB) applyMigrations(ctx context.Context, tx *stmtTx, applied *[]int) error {
	if err := db.lockMigrations(ctx, tx); err != nil {
		return err
	}
	list := migrations
	if db.postgres {
		list = pgMigrations
	}
	if _, err := tx.Tx.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.Tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(list) {
		return fmt.Errorf("version %d, this wharf knows %d: upgrade wharf: %w", current, len(list), ErrSchemaTooNew)
	}
	if current > 0 && current < len(list) {
		// Said before the work, not only after: an upgrade can rewrite the
		// largest tables (migration 29 does, on SQLite), and start-up
		// waits for it.
		db.log.InfoContext(ctx, "applying metadata migrations", "from_version", current, "to_version", len(list))
	}
	for v := current + 1; v <= len(list); v++ {
		if _, err := tx.Tx.ExecContext(ctx, list[v-1]); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.Tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, db.now()); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		*applied = append(*applied, v)
	}
	return nil
}

// retryBusy retries fn while SQLite answers SQLITE_BUSY without waiting,
// which it does while another process turns a new file to WAL mode, in
// spite of busy_timeout.
func retryBusy(ctx context.Context, limit time.Duration, fn func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := fn()
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}
