package api

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzTaskFilter: any query string either is refused with a 400 or gives
// a filter inside its bounds (a page of 1 to MaxTaskLimit tasks, no
// negative offset or time, text filters of at most maxQueryText bytes).
func FuzzTaskFilter(f *testing.F) {
	for _, s := range []string{"", "status=dead_letter&lane=high&limit=25&offset=50", "status=all&q=boom&order=newest",
		"limit=0", "limit=-3", "offset=-1", "since=-5&until=99999999999999", "status=bogus", "priority=3", "limit=1e3",
		"q=%00%ff", "agent=" + string(make([]byte, 300))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req := &Request{Request: httptest.NewRequest("GET", "/api/tasks?"+q.Encode(), nil)}
		flt, bad := filter(req)
		if bad != nil {
			if bad.Status != 400 {
				t.Fatalf("%q: refusal with status %d", raw, bad.Status)
			}
			return
		}
		if flt.Limit < 1 || flt.Limit > MaxTaskLimit || flt.Offset < 0 || flt.CreatedFrom < 0 || flt.CreatedTo < 0 {
			t.Fatalf("%q: filter out of bounds: %+v", raw, flt)
		}
		for _, s := range []string{flt.Text, flt.Agent, flt.AssignedTo, flt.Capability, flt.SubmittedBy} {
			if len(s) > maxQueryText {
				t.Fatalf("%q: text filter of %d bytes", raw, len(s))
			}
		}
		if flt.Priority != nil && (*flt.Priority < 0 || *flt.Priority > 3) {
			t.Fatalf("%q: lane %d", raw, *flt.Priority)
		}
	})
}
