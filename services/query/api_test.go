package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// nopPublisher accepts every message; the query API never reads them.
type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, store.Message) error { return nil }

// fixture fills an in-memory store through the engine and serves the API.
func fixture(t *testing.T) (*httptest.Server, *memstore.Store, []governor.Event) {
	t.Helper()
	st := memstore.New()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Options{
		Store: st, Publisher: nopPublisher{}, Machines: machines.New(nil), Topics: topic.Names{},
		Clock:  func() time.Time { now = now.Add(time.Second); return now },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var evs []governor.Event
	add := func(d governor.Domain, name governor.EventName, subject, data string) {
		e := governor.Event{ID: fmt.Sprintf("ev-%d", len(evs)), Source: "//test", Type: governor.TypeOf(d, name),
			Domain: d, Name: name, Tenant: "acme", Subject: subject, Data: json.RawMessage(data)}
		if _, err := eng.Apply(context.Background(), e); err != nil {
			t.Fatalf("Apply(%s) = %v", e.Type, err)
		}
		evs = append(evs, e)
	}
	add(governor.CustomerAccount, "requested", "default", "")
	add(governor.CustomerAccount, "verified", "default", "")
	for i := range 5 {
		add(governor.Billing, "usage_recorded", "2026-11", fmt.Sprintf(`{"meter":"api_calls","quantity":%d}`, i+1))
	}
	add(governor.Billing, "refund_settled", "2026-11", "") // rejected: not allowed in open
	srv := httptest.NewServer((&API{store: st, log: slog.New(slog.NewJSONHandler(io.Discard, nil))}).Handler())
	t.Cleanup(srv.Close)
	return srv, st, evs
}

// verifyReport is the answer of GET /v1/tenants/{t}/verify.
type verifyReport struct {
	OK        bool          `json:"ok"`
	Instances []chainReport `json:"instances"`
}

// verifyAcme serves an API over r and returns its verification of
// tenant acme, failing the test unless it answers 200.
func verifyAcme(t *testing.T, r Reader) verifyReport {
	t.Helper()
	srv := httptest.NewServer((&API{store: r}).Handler())
	defer srv.Close()
	var body verifyReport
	if code := get(t, srv, "/v1/tenants/acme/verify", &body); code != 200 {
		t.Fatalf("status %d", code)
	}
	return body
}

func get(t *testing.T, srv *httptest.Server, path string, v any) int {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s Content-Type = %q", path, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return resp.StatusCode
}

func TestGovernors(t *testing.T) {
	srv, _, _ := fixture(t)
	var body struct {
		Governors []governorView `json:"governors"`
	}
	if code := get(t, srv, "/v1/tenants/acme/governors", &body); code != 200 {
		t.Fatalf("status = %d", code)
	}
	got := map[string]governorView{}
	for _, g := range body.Governors {
		got[string(g.Domain)+"/"+g.Subject] = g
	}
	if g := got["customer_account/default"]; g.State != "active" || g.Version != 2 {
		t.Errorf("customer_account = %+v, want active v2", g)
	}
	if g := got["billing/2026-11"]; g.State != "open" || g.Version != 6 || !strings.Contains(string(g.Data), "api_calls") {
		t.Errorf("billing = %+v, want open v6 with meters", g)
	}
}

func TestReceiptsPagination(t *testing.T) {
	srv, _, _ := fixture(t)
	var all []receipt.Receipt
	token := ""
	for page := 0; page < 10; page++ {
		var body struct {
			Receipts []receipt.Receipt `json:"receipts"`
			Next     string            `json:"next_page_token"`
		}
		path := "/v1/tenants/acme/receipts?domain=billing&page_size=2"
		if token != "" {
			path += "&page_token=" + url.QueryEscape(token)
		}
		if code := get(t, srv, path, &body); code != 200 {
			t.Fatalf("GET %s = %d", path, code)
		}
		all = append(all, body.Receipts...)
		if body.Next == "" {
			break
		}
		token = body.Next
	}
	if len(all) != 6 {
		t.Fatalf("paged receipts = %d, want 6", len(all))
	}
	for i, r := range all {
		if r.Domain != "billing" || r.Seq != int64(i+1) {
			t.Errorf("receipt %d = %s seq %d", i, r.Domain, r.Seq)
		}
	}
	if err := receipt.Verify(all); err != nil {
		t.Errorf("receipts from the API do not verify: %v", err)
	}
}

func TestReceiptsByExecution(t *testing.T) {
	srv, _, evs := fixture(t)
	var body struct {
		Receipts []receipt.Receipt `json:"receipts"`
	}
	if code := get(t, srv, "/v1/receipts?execution_id="+evs[1].ID, &body); code != 200 || len(body.Receipts) != 1 || body.Receipts[0].ToState != "active" {
		t.Errorf("by execution = %d %+v", code, body.Receipts)
	}
}

func TestTimeRangeOutsideYears0001To9999IsAPlainError(t *testing.T) {
	srv, _, _ := fixture(t)
	long := strings.Repeat("x", 120<<10)
	tests := []struct{ path, want string }{
		{"/v1/tenants/acme/receipts?from=0000-01-01T00:00:00Z", "years 0001 to 9999"},
		{"/v1/tenants/acme/receipts?to=0000-12-31T23:59:59Z", "years 0001 to 9999"},
		{"/v1/tenants/acme/receipts?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", "from must be before to"},
		{"/v1/tenants/acme/receipts?from=" + long, "want an RFC 3339 time"},
		{"/v1/receipts?execution_id=" + strings.Repeat("y", 200), "not_found"},
	}
	for _, tt := range tests {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		code := get(t, srv, tt.path, &body)
		if code/100 != 4 || !strings.Contains(body.Error.Message+body.Error.Code, tt.want) {
			t.Errorf("GET %.80s = %d %+v, want a 4xx saying %q", tt.path, code, body.Error, tt.want)
		}
		if len(body.Error.Message) > 300 || strings.Contains(body.Error.Message, "rpc error") {
			t.Errorf("GET %.80s: message of %d bytes %.120q: want a short plain message", tt.path, len(body.Error.Message), body.Error.Message)
		}
	}
}

func TestErrors(t *testing.T) {
	srv, _, _ := fixture(t)
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/v1/tenants/__x__/governors", 400, "invalid"},
		{"/v1/tenants/acme/receipts?domain=nope", 400, "invalid"},
		{"/v1/tenants/acme/receipts?page_size=0", 400, "invalid"},
		{"/v1/tenants/acme/receipts?from=yesterday", 400, "invalid"},
		{"/v1/tenants/acme/receipts?page_token=garbage", 400, "invalid"},
		{"/v1/receipts", 400, "invalid"},
		{"/v1/receipts?execution_id=missing", 404, "not_found"},
		{"/v1/nothing", 404, "not_found"},
	}
	for _, tt := range tests {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		code := get(t, srv, tt.path, &body)
		if code != tt.code || body.Error.Code != tt.want || body.Error.Message == "" {
			t.Errorf("GET %s = %d %+v, want %d %s with a message", tt.path, code, body.Error, tt.code, tt.want)
		}
	}
}

// tamperStore wraps a store and alters the receipts it returns.
type tamperStore struct {
	Reader
	edit func([]receipt.Receipt) []receipt.Receipt
}

func (s tamperStore) Chain(ctx context.Context, k governor.Key, after int64, limit int) ([]receipt.Receipt, error) {
	rs, err := s.Reader.Chain(ctx, k, after, limit)
	if err != nil || k.Domain != governor.Billing {
		return rs, err
	}
	return s.edit(rs), nil
}

func TestVerify(t *testing.T) {
	_, st, _ := fixture(t)
	tests := []struct {
		name    string
		edit    func([]receipt.Receipt) []receipt.Receipt
		ok      bool
		seq     int64
		problem string
	}{
		{"intact", func(rs []receipt.Receipt) []receipt.Receipt { return rs }, true, 0, ""},
		{"field changed", func(rs []receipt.Receipt) []receipt.Receipt { rs[2].ToState = "paid"; return rs }, false, 3, "hash_mismatch"},
		{"receipt dropped", func(rs []receipt.Receipt) []receipt.Receipt { return append(rs[:1:1], rs[2:]...) }, false, 3, "bad_sequence"},
		{"two reordered", func(rs []receipt.Receipt) []receipt.Receipt { rs[1], rs[2] = rs[2], rs[1]; return rs }, false, 3, "bad_sequence"},
		{"last dropped", func(rs []receipt.Receipt) []receipt.Receipt { return rs[:len(rs)-1] }, false, 6, "missing_receipt"},
		{"last rewritten with its hash", func(rs []receipt.Receipt) []receipt.Receipt {
			last := &rs[len(rs)-1]
			last.Reason = "nothing to see"
			last.Hash = last.ComputeHash()
			return rs
		}, false, 6, "head_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := verifyAcme(t, tamperStore{Reader: st, edit: tt.edit})
			if body.OK != tt.ok {
				t.Errorf("ok = %v, want %v: %+v", body.OK, tt.ok, body.Instances)
			}
			for _, in := range body.Instances {
				if in.Domain != governor.Billing {
					if !in.OK {
						t.Errorf("untouched %s reported broken: %+v", in.Domain, in.Broken)
					}
					continue
				}
				if tt.ok {
					continue
				}
				if in.Broken == nil || in.Broken.Seq != tt.seq || in.Broken.Problem != tt.problem {
					t.Errorf("billing first_broken = %+v, want seq %d %s", in.Broken, tt.seq, tt.problem)
				}
			}
		})
	}
}

// staleStore answers the first Instances call with the billing instance
// as it was before its last decision, as when that decision commits
// between the verification's read of the instances and of the chain;
// always, when stuck is set.
type staleStore struct {
	Reader
	stuck bool
	calls int
}

func (s *staleStore) Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error) {
	insts, err := s.Reader.Instances(ctx, tenant, domain)
	if err != nil {
		return nil, err
	}
	s.calls++
	if s.calls > 1 && !s.stuck {
		return insts, nil
	}
	for i, in := range insts {
		if in.Domain != governor.Billing {
			continue
		}
		rs, err := s.Reader.Chain(ctx, in.Key, 0, 100)
		if err != nil {
			return nil, err
		}
		insts[i].Version, insts[i].LastHash = in.Version-1, rs[len(rs)-2].Hash
	}
	return insts, nil
}

// TestVerifyDecisionDuringVerification: a decision that commits while an
// instance is verified is no break in its chain; a receipt past the
// instance that the instance never reaches still is.
func TestVerifyDecisionDuringVerification(t *testing.T) {
	_, st, _ := fixture(t)
	for _, tc := range []struct {
		name  string
		stuck bool
		ok    bool
	}{
		{"instance moved on", false, true},
		{"receipt past the instance", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := verifyAcme(t, &staleStore{Reader: st, stuck: tc.stuck})
			if body.OK != tc.ok {
				t.Errorf("ok = %v, want %v: %+v", body.OK, tc.ok, body.Instances)
			}
		})
	}
}
