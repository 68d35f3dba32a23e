package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

var _ auth.Store = (*DB)(nil)

// authNotFound turns sql.ErrNoRows into auth.ErrNotFound with context.
func authNotFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, auth.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// authExpectOne returns auth.ErrNotFound if res changed no row.
func authExpectOne(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, auth.ErrNotFound)
	}
	return nil
}

// nanos stores a time as Unix nanoseconds, the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// optTime reads what nanos stored.
func optTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

// nameTaken reports whether a user or an organisation is called name.
func nameTaken(ctx context.Context, tx *stmtTx, name string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx,
		`SELECT (SELECT COUNT(*) FROM users WHERE name = ?) + (SELECT COUNT(*) FROM orgs WHERE name = ?)`,
		name, name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check name %s: %w", name, err)
	}
	return n > 0, nil
}

// CreateUser adds u unless a user or organisation has its name.
func (db *DB) CreateUser(ctx context.Context, u *auth.User) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		if err := lockAccounts(ctx, tx); err != nil {
			return err
		}
		return insertUser(ctx, tx, u)
	})
}

func insertUser(ctx context.Context, tx *stmtTx, u *auth.User) error {
	taken, err := nameTaken(ctx, tx, u.Name)
	if err != nil {
		return err
	}
	if taken {
		return fmt.Errorf("user %s: %w", u.Name, auth.ErrExists)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO users (name, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?)`,
		u.Name, u.PasswordHash, u.Admin, nanos(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, err)
	}
	return nil
}

// CreateFirstUser adds u only if the users table is empty.
func (db *DB) CreateFirstUser(ctx context.Context, u *auth.User) (bool, error) {
	created := false
	err := db.inTx(ctx, func(tx *stmtTx) error {
		created = false
		if err := lockAccounts(ctx, tx); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if n > 0 {
			return nil
		}
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

// GetUser returns the user name.
func (db *DB) GetUser(ctx context.Context, name string) (*auth.User, error) {
	u := &auth.User{Name: name}
	var created int64
	err := db.read.QueryRowContext(ctx,
		`SELECT password_hash, is_admin, created_at FROM users WHERE name = ?`, name).
		Scan(&u.PasswordHash, &u.Admin, &created)
	if err != nil {
		return nil, authNotFound(err, "user "+name)
	}
	u.CreatedAt = optTime(created)
	return u, nil
}

// UserExists reports whether the user exists, on the memoized point path:
// every bearer-token request asks.
func (db *DB) UserExists(ctx context.Context, name string) (bool, error) {
	_, err := db.lookup(ctx, `SELECT 1 FROM users WHERE name = ?`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("user %s: %w", name, err)
	}
	return true, nil
}

// ActiveTokenExpiry returns when the user's unrevoked token id expires,
// on the memoized point path: every bearer-token request asks.
func (db *DB) ActiveTokenExpiry(ctx context.Context, user, id string) (time.Time, error) {
	v, err := db.lookup(ctx,
		`SELECT expires_at FROM access_tokens WHERE id = ? AND user_name = ? AND revoked_at = 0`, id, user)
	if err != nil {
		return time.Time{}, authNotFound(err, "token "+id)
	}
	n, ok := v.(int64)
	if !ok {
		return time.Time{}, fmt.Errorf("token %s: expiry stored as %T", id, v)
	}
	return optTime(n), nil
}

// SetPasswordHash replaces the user's password hash.
func (db *DB) SetPasswordHash(ctx context.Context, name, hash string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", name, err)
	}
	return authExpectOne(res, "user "+name)
}

// DeleteUser removes the user; memberships and tokens go with it.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", name, err)
	}
	return authExpectOne(res, "user "+name)
}

// ListUsers lists users by name.
func (db *DB) ListUsers(ctx context.Context) ([]auth.User, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT name, password_hash, is_admin, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	users := []auth.User{}
	for rows.Next() {
		var u auth.User
		var created int64
		if err := rows.Scan(&u.Name, &u.PasswordHash, &u.Admin, &created); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = optTime(created)
		users = append(users, u)
	}
	return users, rows.Err()
}

// CreateOrg adds o unless a user or organisation has its name.
func (db *DB) CreateOrg(ctx context.Context, o *auth.Org) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		if err := lockAccounts(ctx, tx); err != nil {
			return err
		}
		taken, err := nameTaken(ctx, tx, o.Name)
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("organisation %s: %w", o.Name, auth.ErrExists)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO orgs (name, created_at) VALUES (?, ?)`, o.Name, nanos(o.CreatedAt))
		if err != nil {
			return fmt.Errorf("create organisation %s: %w", o.Name, err)
		}
		return nil
	})
}

// GetOrg returns the organisation name.
func (db *DB) GetOrg(ctx context.Context, name string) (*auth.Org, error) {
	o := &auth.Org{Name: name}
	var created int64
	err := db.read.QueryRowContext(ctx, `SELECT created_at FROM orgs WHERE name = ?`, name).Scan(&created)
	if err != nil {
		return nil, authNotFound(err, "organisation "+name)
	}
	o.CreatedAt = optTime(created)
	return o, nil
}

// SetMember adds a member or changes its role.
func (db *DB) SetMember(ctx context.Context, m auth.Member) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		var n int
		err := tx.QueryRowContext(ctx,
			`SELECT (SELECT COUNT(*) FROM orgs WHERE name = ?) * (SELECT COUNT(*) FROM users WHERE name = ?)`,
			m.Org, m.User).Scan(&n)
		if err != nil {
			return fmt.Errorf("member %s of %s: %w", m.User, m.Org, err)
		}
		if n == 0 {
			return fmt.Errorf("member %s of %s: %w", m.User, m.Org, auth.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO org_members (org, user_name, role) VALUES (?, ?, ?)
			 ON CONFLICT (org, user_name) DO UPDATE SET role = excluded.role`, m.Org, m.User, string(m.Role))
		if err != nil {
			return fmt.Errorf("member %s of %s: %w", m.User, m.Org, err)
		}
		return nil
	})
}

// RemoveMember removes the user from the organisation.
func (db *DB) RemoveMember(ctx context.Context, org, user string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM org_members WHERE org = ? AND user_name = ?`, org, user)
	if err != nil {
		return fmt.Errorf("remove member %s of %s: %w", user, org, err)
	}
	return authExpectOne(res, "member "+user+" of "+org)
}

// MemberRole returns the user's role in the organisation.
func (db *DB) MemberRole(ctx context.Context, org, user string) (auth.Role, error) {
	var role string
	err := db.read.QueryRowContext(ctx,
		`SELECT role FROM org_members WHERE org = ? AND user_name = ?`, org, user).Scan(&role)
	if err != nil {
		return "", authNotFound(err, "member "+user+" of "+org)
	}
	return auth.Role(role), nil
}

// ListMembers lists the organisation's members by user name.
func (db *DB) ListMembers(ctx context.Context, org string) ([]auth.Member, error) {
	if _, err := db.GetOrg(ctx, org); err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT user_name, role FROM org_members WHERE org = ? ORDER BY user_name`, org)
	if err != nil {
		return nil, fmt.Errorf("list members of %s: %w", org, err)
	}
	defer rows.Close()
	members := []auth.Member{}
	for rows.Next() {
		m := auth.Member{Org: org}
		var role string
		if err := rows.Scan(&m.User, &role); err != nil {
			return nil, fmt.Errorf("list members of %s: %w", org, err)
		}
		m.Role = auth.Role(role)
		members = append(members, m)
	}
	return members, rows.Err()
}

// SetVisibility records the repository's visibility.
func (db *DB) SetVisibility(ctx context.Context, repo string, v auth.Visibility) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO repo_visibility (repo, visibility) VALUES (?, ?)
		 ON CONFLICT (repo) DO UPDATE SET visibility = excluded.visibility`, repo, string(v))
	if err != nil {
		return fmt.Errorf("set visibility of %s: %w", repo, err)
	}
	return nil
}

// GetVisibility returns the repository's recorded visibility, on the point
// path: every pull that its caller's role does not already allow asks.
func (db *DB) GetVisibility(ctx context.Context, repo string) (auth.Visibility, error) {
	v, err := db.lookup(ctx, `SELECT visibility FROM repo_visibility WHERE repo = ?`, repo)
	if err != nil {
		return "", authNotFound(err, "visibility of "+repo)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("visibility of %s: stored as %T", repo, v)
	}
	return auth.Visibility(s), nil
}

const tokenColumns = `id, user_name, kind, name, scope, hash, parent, created_at, expires_at, last_used, revoked_at`

// CreateToken stores t.
func (db *DB) CreateToken(ctx context.Context, t *auth.Token) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		var n int
		err := tx.QueryRowContext(ctx,
			`SELECT (SELECT COUNT(*) FROM access_tokens WHERE id = ? OR hash = ?)`, t.ID, t.Hash).Scan(&n)
		if err != nil {
			return fmt.Errorf("create token %s: %w", t.ID, err)
		}
		if n > 0 {
			return fmt.Errorf("token %s: %w", t.ID, auth.ErrExists)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE name = ?`, t.User).Scan(&n); err != nil {
			return fmt.Errorf("create token %s: %w", t.ID, err)
		}
		if n == 0 {
			return fmt.Errorf("token owner %s: %w", t.User, auth.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO access_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.User, string(t.Kind), t.Name, string(t.Scope), t.Hash, t.Parent,
			nanos(t.CreatedAt), nanos(t.ExpiresAt), nanos(t.LastUsed), nanos(t.RevokedAt))
		if err != nil {
			return fmt.Errorf("create token %s: %w", t.ID, err)
		}
		return nil
	})
}

type scanner interface{ Scan(dest ...any) error }

func scanToken(row scanner) (*auth.Token, error) {
	var t auth.Token
	var kind, scope string
	var created, expires, used, revoked int64
	if err := row.Scan(&t.ID, &t.User, &kind, &t.Name, &scope, &t.Hash, &t.Parent, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	t.Kind, t.Scope = auth.TokenKind(kind), auth.TokenScope(scope)
	t.CreatedAt, t.ExpiresAt, t.LastUsed, t.RevokedAt = optTime(created), optTime(expires), optTime(used), optTime(revoked)
	return &t, nil
}

// GetTokenByHash returns the token whose secret hashes to hash.
func (db *DB) GetTokenByHash(ctx context.Context, hash []byte) (*auth.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM access_tokens WHERE hash = ?`, hash))
	if err != nil {
		return nil, authNotFound(err, "token")
	}
	return t, nil
}

// ListTokens lists the user's tokens of kind, oldest first.
func (db *DB) ListTokens(ctx context.Context, user string, kind auth.TokenKind) ([]auth.Token, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+tokenColumns+` FROM access_tokens WHERE user_name = ? AND kind = ? ORDER BY created_at, id`,
		user, string(kind))
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", user, err)
	}
	defer rows.Close()
	tokens := []auth.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens of %s: %w", user, err)
		}
		tokens = append(tokens, *t)
	}
	return tokens, rows.Err()
}

// RevokeToken marks the user's token revoked; the first time is kept.
func (db *DB) RevokeToken(ctx context.Context, user, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE access_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END
		 WHERE user_name = ? AND (id = ? OR parent = ?)`, nanos(at), user, id, id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return authExpectOne(res, "token "+id)
}

// RevokeTokens revokes every unrevoked token of kind the user holds.
func (db *DB) RevokeTokens(ctx context.Context, user string, kind auth.TokenKind, at time.Time) error {
	_, err := db.write.ExecContext(ctx,
		`UPDATE access_tokens SET revoked_at = ? WHERE user_name = ? AND kind = ? AND revoked_at = 0`,
		nanos(at), user, string(kind))
	if err != nil {
		return fmt.Errorf("revoke tokens of %s: %w", user, err)
	}
	return nil
}

// TouchToken records that token id was used at at.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE access_tokens SET last_used = ? WHERE id = ?`, nanos(at), id)
	if err != nil {
		return fmt.Errorf("touch token %s: %w", id, err)
	}
	return authExpectOne(res, "token "+id)
}

// CreateSigningKey stores k.
func (db *DB) CreateSigningKey(ctx context.Context, k *auth.SigningKey) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys WHERE id = ?`, k.ID).Scan(&n); err != nil {
			return fmt.Errorf("create signing key %s: %w", k.ID, err)
		}
		if n > 0 {
			return fmt.Errorf("signing key %s: %w", k.ID, auth.ErrExists)
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO signing_keys (id, private_key, created_at, retired_at) VALUES (?, ?, ?, ?)`,
			k.ID, k.PrivateKey, nanos(k.CreatedAt), nanos(k.RetiredAt))
		if err != nil {
			return fmt.Errorf("create signing key %s: %w", k.ID, err)
		}
		return nil
	})
}

// ListSigningKeys lists all keys, oldest first.
func (db *DB) ListSigningKeys(ctx context.Context) ([]auth.SigningKey, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, private_key, created_at, retired_at FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	keys := []auth.SigningKey{}
	for rows.Next() {
		var k auth.SigningKey
		var created, retired int64
		if err := rows.Scan(&k.ID, &k.PrivateKey, &created, &retired); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt = optTime(created), optTime(retired)
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// RetireSigningKey marks key id retired; the first time is kept.
func (db *DB) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx,
		`UPDATE signing_keys SET retired_at = CASE WHEN retired_at = 0 THEN ? ELSE retired_at END WHERE id = ?`,
		nanos(at), id)
	if err != nil {
		return fmt.Errorf("retire signing key %s: %w", id, err)
	}
	return authExpectOne(res, "signing key "+id)
}

// DeleteSigningKey removes key id.
func (db *DB) DeleteSigningKey(ctx context.Context, id string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete signing key %s: %w", id, err)
	}
	return authExpectOne(res, "signing key "+id)
}
