package metadatatest

import (
	"reflect"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// RunReplication runs the contract of metadata.ReplicationStore: rules,
// their sealed passwords and their run status.
func RunReplication(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	t.Run("Rules_CreateGetListDeleteAndStatus", func(t *testing.T) {
		t.Parallel()
		s, ok := newStore(t).(metadata.ReplicationStore)
		if !ok {
			t.Fatal("the store is not a metadata.ReplicationStore")
		}
		testReplicationRules(t, s)
	})
}

func testReplicationRules(t *testing.T, s metadata.ReplicationStore) {
	ctx := t.Context()
	r := &metadata.ReplicationRule{Namespace: "ns", Pattern: "ns/*", URL: "https://b.test", DestPrefix: "site-b",
		Username: "robot", CreatedBy: "alice"}
	id, err := s.CreateReplicationRule(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateReplicationRule(ctx, &metadata.ReplicationRule{Namespace: "other", Pattern: "other/app", URL: "http://c.test"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReplicationPassword(ctx, id, "v1:sealed"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetReplicationRule(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.IsZero() {
		t.Error("CreatedAt is zero")
	}
	r.ID, r.CreatedAt, r.SealedPassword = id, got.CreatedAt, "v1:sealed"
	if !reflect.DeepEqual(got, r) {
		t.Errorf("GetReplicationRule = %+v, want %+v", got, r)
	}
	if list, err := s.ListReplicationRules(ctx, "ns"); err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("ListReplicationRules(ns) = %+v, %v; want the one rule", list, err)
	}
	if all, err := s.ListReplicationRules(ctx, ""); err != nil || len(all) != 2 {
		t.Errorf("ListReplicationRules(\"\") = %d rules, %v; want 2", len(all), err)
	}

	ok := time.Unix(1000, 0)
	if err := s.RecordReplicationRun(ctx, id, ok, ""); err != nil {
		t.Fatal(err)
	}
	failed := ok.Add(time.Minute)
	if err := s.RecordReplicationRun(ctx, id, failed, "destination: 503"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetReplicationRule(ctx, id)
	if !got.LastRun.Equal(failed) || !got.LastOK.Equal(ok) || got.LastError != "destination: 503" {
		t.Errorf("after a success then a failure: run %v ok %v error %q", got.LastRun, got.LastOK, got.LastError)
	}
	if err := s.RecordReplicationRun(ctx, id, failed.Add(time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetReplicationRule(ctx, id); got.LastError != "" || !got.LastOK.Equal(got.LastRun) {
		t.Errorf("a success clears the error: %+v", got)
	}

	if err := s.DeleteReplicationRule(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetReplicationRule(ctx, id)
	wantErr(t, "GetReplicationRule after delete", err, metadata.ErrNotFound)
	wantErr(t, "DeleteReplicationRule again", s.DeleteReplicationRule(ctx, id), metadata.ErrNotFound)
	wantErr(t, "RecordReplicationRun of none", s.RecordReplicationRun(ctx, id, ok, ""), metadata.ErrNotFound)
	wantErr(t, "SetReplicationPassword of none", s.SetReplicationPassword(ctx, id, "x"), metadata.ErrNotFound)
}
