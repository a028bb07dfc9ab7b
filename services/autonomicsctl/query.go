package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// apiClient calls one of the stack's JSON APIs: the query API
// (services/query), the actuator's or the receiver's.
type apiClient struct {
	// name names the API in errors.
	name string
	base string
	http *http.Client
}

// newAPIClient returns a client of the API name at base.
func newAPIClient(name, base string) *apiClient {
	return &apiClient{name: name, base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 10 * time.Second}}
}

// newQueryClient returns a client of the query API at base.
func newQueryClient(base string) *apiClient { return newAPIClient("query API", base) }

// governorView is one instance as GET /v1/tenants/{t}/governors lists it.
type governorView struct {
	Domain    governor.Domain `json:"domain"`
	Subject   string          `json:"subject"`
	State     governor.State  `json:"state"`
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
	UpdatedAt string          `json:"updated_at"`
}

// chainReport is one instance of GET /v1/tenants/{t}/verify.
type chainReport struct {
	Domain   governor.Domain `json:"domain"`
	Subject  string          `json:"subject"`
	Receipts int             `json:"receipts"`
	OK       bool            `json:"ok"`
	Broken   *struct {
		Seq     int64  `json:"seq"`
		Problem string `json:"problem"`
		Detail  string `json:"detail"`
	} `json:"first_broken,omitempty"`
}

// verifyReport is the answer of GET /v1/tenants/{t}/verify.
type verifyReport struct {
	Tenant    string        `json:"tenant_id"`
	OK        bool          `json:"ok"`
	Instances []chainReport `json:"instances"`
}

// apiError is the error body of the stack's APIs,
// {"error": {"code", "message"}}.
type apiError struct {
	API     string
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %d %s: %s", e.API, e.Status, e.Code, e.Message)
}

// get fetches path and decodes the JSON answer into v.
func (q *apiClient) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, q.base+path, nil)
	if err != nil {
		return fault.Wrap(fault.Invalid, "autonomicsctl."+q.name, err)
	}
	return q.do(req, path, v)
}

// do sends req and decodes a JSON answer of 2xx into v (when not nil).
// Other answers are errors: NotFound for 404, Conflict for 409, Invalid
// for another 4xx, Unavailable otherwise.
func (q *apiClient) do(req *http.Request, path string, v any) error {
	op := "autonomicsctl." + q.name
	resp, err := q.http.Do(req)
	if err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error apiError `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		e.Error.API, e.Error.Status = q.name, resp.StatusCode
		code := fault.Unavailable
		switch {
		case resp.StatusCode == http.StatusNotFound:
			code = fault.NotFound
		case resp.StatusCode == http.StatusConflict:
			code = fault.Conflict
		case resp.StatusCode/100 == 4:
			code = fault.Invalid
		}
		return fault.Wrap(code, op+" "+req.Method+" "+path, &e.Error)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fault.Wrap(fault.Internal, op+" "+path, err)
	}
	return nil
}

// Governors lists the tenant's instances.
func (q *apiClient) Governors(ctx context.Context, tenant string) ([]governorView, error) {
	var out struct {
		Governors []governorView `json:"governors"`
	}
	err := q.get(ctx, "/v1/tenants/"+url.PathEscape(tenant)+"/governors", &out)
	return out.Governors, err
}

// ReceiptsOf returns the receipts of the event with execution id id; none
// (and no error) while there is none yet.
func (q *apiClient) ReceiptsOf(ctx context.Context, id string) ([]receipt.Receipt, error) {
	var out struct {
		Receipts []receipt.Receipt `json:"receipts"`
	}
	err := q.get(ctx, "/v1/receipts?execution_id="+url.QueryEscape(id), &out)
	if fault.ErrorCode(err) == fault.NotFound {
		return nil, nil
	}
	return out.Receipts, err
}

// Chain returns every receipt of one instance, oldest first.
func (q *apiClient) Chain(ctx context.Context, tenant string, d governor.Domain, subject string) ([]receipt.Receipt, error) {
	var all []receipt.Receipt
	token := ""
	for {
		v := url.Values{"domain": {string(d)}, "subject": {subject}, "page_size": {"1000"}}
		if token != "" {
			v.Set("page_token", token)
		}
		var out struct {
			Receipts []receipt.Receipt `json:"receipts"`
			Next     string            `json:"next_page_token"`
		}
		if err := q.get(ctx, "/v1/tenants/"+url.PathEscape(tenant)+"/receipts?"+v.Encode(), &out); err != nil {
			return nil, err
		}
		all = append(all, out.Receipts...)
		if out.Next == "" {
			return all, nil
		}
		token = out.Next
	}
}

// Verify recomputes the tenant's chains.
func (q *apiClient) Verify(ctx context.Context, tenant string) (verifyReport, error) {
	var out verifyReport
	err := q.get(ctx, "/v1/tenants/"+url.PathEscape(tenant)+"/verify", &out)
	return out, err
}
