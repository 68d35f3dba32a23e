package distribution

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// TestWriteList_MatchesEncodingJSON holds the hand-written list encoder
// to json.Marshal's bytes, including names that need escaping.
func TestWriteList_MatchesEncodingJSON(t *testing.T) {
	type tagList struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	type catalogList struct {
		Repositories []string `json:"repositories"`
	}
	odd := []string{"v1", "a.b-c_d", `quo"te`, `back\slash`, "<html>&", "tab\there", "ünï", "\x7f", ""}
	cases := []struct {
		name, key string
		names     []string
		want      any
	}{
		{"app/x", "tags", []string{"latest", "v1.0"}, tagList{"app/x", []string{"latest", "v1.0"}}},
		{"app/x", "tags", nil, tagList{"app/x", []string{}}},
		{"app/x", "tags", odd, tagList{"app/x", odd}},
		{"", "repositories", []string{"a", "b/c"}, catalogList{[]string{"a", "b/c"}}},
		{"", "repositories", nil, catalogList{[]string{}}},
		{"", "repositories", odd, catalogList{odd}},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		writeList(rec, c.name, c.key, c.names)
		want, err := json.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != string(want) {
			t.Errorf("writeList(%q, %q, %q)\n got %s\nwant %s", c.name, c.key, c.names, got, want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}
