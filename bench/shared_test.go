package main

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wharf/wharf/internal/throwaway"
)

// The ceiling of a shared-storage row is a physical limit (listed with the
// others); wharf on SQLite, the manifest row's yardstick, is not. Both
// give the row its wharf/limit fraction, which the goal judges.
func TestRow_CeilingIsAListedLimitBaselineIsNot(t *testing.T) {
	h := &harness{res: &Results{}}
	sc := &scenario{ID: "shared-x"}
	samples := map[string][]sample{
		nameWharf:       {{"v": 300}},
		nameRef:         {{"v": 50}},
		nameS3:          {{"v": 600}},
		nameWharfSQLite: {{"v": 500}},
	}
	ceiling := h.row(sc, rowSpec{Metric: "v", Higher: true, Limit: limitCeiling, LimitFrom: nameS3, LimitName: "gw"},
		samples, nil, map[string]string{})
	if ceiling.Limit == nil || *ceiling.Limit != 600 || ceiling.Fraction == nil || *ceiling.Fraction != 0.5 {
		t.Errorf("ceiling row: limit %v, fraction %v; want 600 and 0.5", ceiling.Limit, ceiling.Fraction)
	}
	if len(h.res.Limits) != 1 || h.res.Limits[0].Name != "gw" {
		t.Errorf("limits after the ceiling row: %+v, want the gateway's", h.res.Limits)
	}
	base := h.row(sc, rowSpec{Metric: "v", Higher: true, Limit: limitBaseline, LimitFrom: nameWharfSQLite,
		LimitName: "sqlite", Goal: goalSharedRate}, samples, nil, map[string]string{nameWharfSQLite: "start: boom"})
	if base.Limit == nil || *base.Limit != 500 || base.Fraction == nil || *base.Fraction != 0.6 {
		t.Errorf("baseline row: limit %v, fraction %v; want 500 and 0.6", base.Limit, base.Fraction)
	}
	if len(h.res.Limits) != 1 {
		t.Errorf("the baseline was listed as a physical limit: %+v", h.res.Limits)
	}
	if base.Met == nil || !*base.Met {
		t.Errorf("6× reference at 60%% of SQLite: met %v (%s), want met", base.Met, base.Why)
	}
	if base.Errors[nameWharfSQLite] != "start: boom" {
		t.Errorf("the baseline's error is not on its row: %v", base.Errors)
	}
}

// The reference's configuration on the section's gateway is its s3
// driver with path-style addressing on the gateway's endpoint.
func TestReferenceDriver_IsS3OnTheGateway(t *testing.T) {
	st := &sharedStores{s3: &throwaway.S3{Endpoint: "http://127.0.0.1:9", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk"}}
	var cfg struct {
		Storage map[string]map[string]any `yaml:"storage"`
	}
	if err := yaml.Unmarshal([]byte(referenceConfig("127.0.0.1:5", st.referenceDriver(), "inmemory")), &cfg); err != nil {
		t.Fatal(err)
	}
	s3 := cfg.Storage["s3"]
	want := map[string]any{"regionendpoint": "http://127.0.0.1:9", "forcepathstyle": true, "bucket": bucketRef,
		"accesskey": "ak", "secretkey": "sk", "region": "us-east-1", "chunksize": int(sharedPart)}
	for k, v := range want {
		if s3[k] != v {
			t.Errorf("storage.s3.%s = %v, want %v", k, s3[k], v)
		}
	}
	if _, fs := cfg.Storage["filesystem"]; fs {
		t.Error("the shared reference also has a filesystem driver")
	}
	if cfg.Storage["redirect"]["disable"] != true {
		t.Errorf("storage.redirect: %v, want disable: true", cfg.Storage["redirect"])
	}
}
