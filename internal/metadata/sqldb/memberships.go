package sqldb

import (
	"context"
	"fmt"

	"github.com/wharf/wharf/internal/auth"
)

var _ auth.MembershipLister = (*DB)(nil)

// ListMemberships lists the organisations user belongs to, by name.
func (db *DB) ListMemberships(ctx context.Context, user string) ([]auth.Member, error) {
	rows, err := db.query(ctx, `SELECT org, role FROM org_members WHERE user_name = ? ORDER BY org`, user)
	if err != nil {
		return nil, fmt.Errorf("list memberships of %s: %w", user, err)
	}
	defer rows.Close()
	out := []auth.Member{}
	for rows.Next() {
		m := auth.Member{User: user}
		var role string
		if err := rows.Scan(&m.Org, &role); err != nil {
			return nil, fmt.Errorf("list memberships of %s: %w", user, err)
		}
		m.Role = auth.Role(role)
		out = append(out, m)
	}
	return out, rows.Err()
}
