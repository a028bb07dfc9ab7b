package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace/procurement"
	"github.com/autonomics/autonomics/shared/marketplace/standin"
)

// The Marketplace customer of the demo: a buyer's whole life, driven by
// what Marketplace does alone — its sign-up token and its notifications.
// The demo acts only as the buyer in the Marketplace UI (the stand-in's
// scenario methods); every governor event comes from the sign-up service
// or the notification adapter, and every Procurement call from the
// Procurement actuator.
const (
	mpProduct          = "demo-saas"
	mpUsageReportingID = "project_number:424242"
	mpUsageMetric      = "api_calls"
	mpUsage            = 420
)

// mpStep is one step of the story: what the buyer (or Marketplace) does,
// then what must hold.
type mpStep struct {
	Title string
	Do    func(ctx context.Context) error
	Wait  []want
	// Until, when set, must also become true (a stand-in condition).
	Until func() (bool, string)
}

// playMarketplace plays the Marketplace customer's story and reports the
// calls the stand-ins saw. It returns the tenant, for the ledger check.
func (r *demoRunner) playMarketplace(ctx context.Context, m *marketplaceSide, cfg stackConfig) (string, []error) {
	proc := m.Procurement
	account := "acct-" + strings.TrimPrefix(r.run, "demo-")
	var tenant, ent string
	mu := newAPIClient("marketplace", serviceURL(cfg.marketplacePort()))

	fmt.Fprintf(r.out, "\n== Marketplace customer (provider %s, driven by notifications alone) ==\n", localProvider)
	refused, err := signupRefused(ctx, proc, cfg, account)
	if err != nil {
		return "", []error{err}
	}
	fmt.Fprintf(r.out, "  a forged sign-up token (audience evil.example.com) → %s\n", refused)

	steps := []mpStep{
		{
			Title: "the buyer signs up: Marketplace posts its JWT to /signup",
			Do: func(ctx context.Context) error {
				if err := proc.CreateAccount(ctx, account); err != nil {
					return err
				}
				t, err := postSignup(ctx, proc, cfg, account, localAudience)
				tenant = t
				return err
			},
			Until: func() (bool, string) {
				a, ok := proc.Account(account)
				if !ok {
					return false, "the stand-in has no account " + account
				}
				for _, ap := range a.Approvals {
					if ap.Name == procurement.SignupApproval {
						return ap.State == standin.ApprovalApproved, "signup approval " + ap.State
					}
				}
				return false, "no signup approval"
			},
		},
		{
			Title: "the buyer purchases plan starter (usage-priced)",
			Do: func(ctx context.Context) error {
				var err error
				ent, err = proc.Purchase(ctx, account, mpProduct, planStarter.SKU, standin.PurchaseOptions{UsageReportingID: mpUsageReportingID})
				return err
			},
		},
		{
			Title: "the provider's system reports usage of api_calls; the hourly report runs (twice: the first opens the window)",
			Do: func(ctx context.Context) error {
				e := ev(quota, "usage_reported", mpUsageMetric, fmt.Sprintf(`{"usage":%d}`, mpUsage))
				id, err := r.publish(ctx, tenant, e)
				if err != nil {
					return err
				}
				if err := r.checkReceipt(ctx, tenant, id, e); err != nil {
					return err
				}
				if err := runUsage(ctx, mu); err != nil {
					return err
				}
				time.Sleep(localUsageWindow + time.Second)
				return runUsage(ctx, mu)
			},
			Until: func() (bool, string) {
				n := m.ServiceControl.Total(localUsageServiceMetric())
				return n == mpUsage, fmt.Sprintf("Service Control holds %d %s", n, localUsageServiceMetric())
			},
		},
		{
			Title: "the buyer asks for plan gold; the governor checks the catalog and approves",
			Do:    func(ctx context.Context) error { return proc.RequestPlanChange(ctx, ent, planGold.SKU) },
			Until: func() (bool, string) {
				e, _ := proc.Entitlement(ent)
				return e.State == procurement.StatePendingPlanChange, "Procurement entitlement " + e.State
			},
		},
		{
			Title: "Marketplace makes the plan change effective",
			Do:    func(ctx context.Context) error { return proc.EffectPlanChange(ctx, ent) },
		},
		{
			Title: "the buyer cancels; Marketplace ends the entitlement",
			Do: func(ctx context.Context) error {
				if err := proc.Cancel(ctx, ent); err != nil {
					return err
				}
				return r.waitFor(ctx, tenant, at(entitlement, ent, "pending_cancellation"))
			},
		},
		{
			Title: "Marketplace cancels the entitlement",
			Do:    func(ctx context.Context) error { return proc.Finish(ctx, ent) },
		},
	}
	// The waits of each step, which need the tenant and entitlement ids
	// known only once the steps before have run.
	waits := []func() []want{
		func() []want { return []want{at(governor.CustomerAccount, governor.DefaultSubject, "active")} },
		func() []want {
			return []want{
				at(entitlement, ent, "active").with("plan", planStarter.SKU).with("usage_reporting_id", mpUsageReportingID),
				at(subscription, ent, "active").with("billed_by", "marketplace"),
				at(quota, mpUsageMetric, "within_limits").with("limit", planStarter.Limits[mpUsageMetric]),
			}
		},
		func() []want { return []want{at(quota, mpUsageMetric, "within_limits").with("usage", mpUsage)} },
		func() []want {
			return []want{at(entitlement, ent, "pending_plan_change_approval").with("pending_plan", planGold.SKU)}
		},
		func() []want {
			return []want{
				at(entitlement, ent, "active").with("plan", planGold.SKU),
				at(subscription, ent, "active").with("plan", planGold.SKU),
				at(quota, mpUsageMetric, "within_limits").with("limit", planGold.Limits[mpUsageMetric]),
			}
		},
		func() []want { return []want{at(entitlement, ent, "pending_cancellation")} },
		func() []want {
			return []want{at(entitlement, ent, "cancelled"), at(subscription, ent, "cancelled")}
		},
	}
	for i, st := range steps {
		sctx, cancel := context.WithTimeout(ctx, r.stepTimeout)
		err := st.Do(sctx)
		for _, w := range waits[i]() {
			if err == nil {
				err = r.waitFor(sctx, tenant, w)
			}
		}
		if err == nil && st.Until != nil {
			err = until(sctx, st.Until)
		}
		cancel()
		if err != nil {
			return tenant, []error{&stepError{Tenant: firstNonEmpty(tenant, account), Index: i + 1, Title: st.Title, Err: err,
				Logs: []string{m.marketplace.logPath, m.signup.logPath}}}
		}
		fmt.Fprintf(r.out, "  %-8s %s\n", "ok", st.Title)
	}
	return tenant, r.reportMarketplace(ctx, m, tenant, account, ent)
}

// localUsageServiceMetric is the Service Control metric api_calls is
// reported as: the first label of the service name, then the metric.
func localUsageServiceMetric() string {
	return strings.SplitN(localUsageService, ".", 2)[0] + "/" + mpUsageMetric
}

// until polls cond until it holds or ctx ends.
func until(ctx context.Context, cond func() (bool, string)) error {
	is := ""
	for {
		ok, desc := cond()
		if ok {
			return nil
		}
		is = desc
		select {
		case <-ctx.Done():
			return &conditionError{Want: "the stand-in to agree", Is: is}
		case <-time.After(pollEvery):
		}
	}
}

// postSignup posts a sign-up token for account with audience to the
// sign-up service, as the buyer's browser does, and returns the tenant.
func postSignup(ctx context.Context, proc *standin.Server, cfg stackConfig, account, audience string) (string, error) {
	tok, err := proc.SignupToken(account, audience)
	if err != nil {
		return "", err
	}
	status, body, err := postForm(ctx, serviceURL(cfg.signupPort())+"/signup", url.Values{"x-gcp-marketplace-token": {tok}})
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("sign-up answered %d: %s", status, body)
	}
	var res struct {
		Tenant string `json:"tenant"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.Tenant == "" {
		return "", fmt.Errorf("sign-up answer %s: no tenant", body)
	}
	return res.Tenant, nil
}

// signupRefused posts a token for the wrong audience and returns how the
// sign-up service answered; anything but 401 is an error.
func signupRefused(ctx context.Context, proc *standin.Server, cfg stackConfig, account string) (string, error) {
	now := time.Now()
	tok, err := proc.MintToken(jwt.RegisteredClaims{
		Issuer: proc.Issuer(), Subject: account, Audience: jwt.ClaimStrings{"evil.example.com"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	})
	if err != nil {
		return "", err
	}
	status, body, err := postForm(ctx, serviceURL(cfg.signupPort())+"/signup", url.Values{"x-gcp-marketplace-token": {tok}})
	if err != nil {
		return "", err
	}
	if status != http.StatusUnauthorized {
		return "", fmt.Errorf("a token for another audience was answered %d, want 401: %s", status, body)
	}
	var e struct {
		Error apiError `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return fmt.Sprintf("%d %s: %s", status, e.Error.Code, e.Error.Message), nil
}

// postForm posts a form and returns the status and at most 64 KiB of body.
func postForm(ctx context.Context, u string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, err
}

// runUsage asks the Marketplace service for one usage report run, as the
// hourly scheduler does.
func runUsage(ctx context.Context, mu *apiClient) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mu.base+"/v1/usage/report", nil)
	if err != nil {
		return err
	}
	var out json.RawMessage
	return mu.do(req, "/v1/usage/report", &out)
}

// reportMarketplace prints the calls the stand-ins saw and the tenant's
// chain verification.
func (r *demoRunner) reportMarketplace(ctx context.Context, m *marketplaceSide, tenant, account, ent string) []error {
	var problems []error
	tw := tabwriter.NewWriter(r.out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(r.out, "\nProcurement API calls (stand-in; account %s → tenant %s, entitlement %s):\n", account, tenant, ent)
	fmt.Fprintf(tw, "  method\tpath\tstatus\n")
	writes := map[string]int{}
	for _, c := range m.Procurement.Calls() {
		fmt.Fprintf(tw, "  %s\t%s\t%d\n", c.Method, c.Path, c.Status)
		if c.Method == http.MethodPost && c.Status == http.StatusOK {
			writes[c.Path[strings.LastIndexByte(c.Path, ':')+1:]]++
		}
	}
	tw.Flush()
	for _, verb := range []string{"approve", "approvePlanChange"} {
		if writes[verb] == 0 {
			problems = append(problems, fmt.Errorf("marketplace: no successful :%s call reached the stand-in", verb))
		}
	}
	fmt.Fprintf(r.out, "\nService Control calls (stand-in, service %s):\n", localUsageService)
	fmt.Fprintf(tw, "  method\tstatus\toperations\tbytes\n")
	for _, c := range m.ServiceControl.Calls() {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\n", c.Method, c.Status, c.Operations, c.Bytes)
	}
	tw.Flush()
	fmt.Fprintf(r.out, "usage reported:\n")
	fmt.Fprintf(tw, "  operation\tconsumer\twindow\tmetrics\tsent\n")
	for _, op := range m.ServiceControl.Reports() {
		fmt.Fprintf(tw, "  %s\t%s\t%s..%s\t%v\t%d\n", op.OperationID, op.ConsumerID,
			op.Start.Format("15:04:05"), op.End.Format("15:04:05"), op.Metrics, op.Sent)
	}
	tw.Flush()
	v, err := r.q.Verify(ctx, tenant)
	if err != nil {
		return append(problems, fmt.Errorf("verify %s: %w", tenant, err))
	}
	receipts := 0
	for _, in := range v.Instances {
		receipts += in.Receipts
	}
	r.receiptsVerified += receipts
	if !v.OK {
		return append(problems, fmt.Errorf("the chains of %s do not verify", tenant))
	}
	fmt.Fprintf(r.out, "chains of %s: ok, %d instances, %d receipts\n", tenant, len(v.Instances), receipts)
	return problems
}
