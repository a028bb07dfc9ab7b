package web

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestScreenshots regenerates the console's screenshots in docs/ from the
// fixture, in a laptop-sized headless Chromium. It runs only with
// AUTONOMICS_SCREENSHOTS=1:
//
//	AUTONOMICS_SCREENSHOTS=1 go test ./shared/console/web -run TestScreenshots
func TestScreenshots(t *testing.T) {
	if os.Getenv("AUTONOMICS_SCREENSHOTS") != "1" {
		t.Skip("set AUTONOMICS_SCREENSHOTS=1 to regenerate docs/*.png")
	}
	fx := newFixture(t)
	for _, n := range []string{"acme-eu", "acme-us", "globex", "hooli", "initech", "massive-dynamic", "pied-piper", "stark", "umbrella", "wayne", "wonka"} {
		fx.data.addTenant(n)
	}
	var victim string
	for _, r := range fx.chain.all {
		if r.Domain == "entitlement" && r.ToState == "suspended" {
			victim = r.Hash
		}
	}
	fx.tamper(victim)
	srv := consoleServer(t, fx)
	ctx := tab(t, 1366, 860)
	if err := os.MkdirAll("docs", 0o755); err != nil {
		t.Fatal(err)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("docs", name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ctx, chromedp.Navigate(srv.URL+"/"))
	shot("tenants.png")
	run(t, ctx, chromedp.Navigate(srv.URL+"/tenants/acme"))
	shot("tenant.png")
	run(t, ctx, chromedp.Navigate(srv.URL+"/tenants/acme/timeline"))
	verifyMarks(t, ctx)
	run(t, ctx, chromedp.Click(chromedp.CSS(`li.receipt[data-hash="`+victim+`"] summary`)))
	shot("timeline-verify.png")
	run(t, ctx, chromedp.Navigate(srv.URL+"/tenants/acme/cascades/"+fx.failCor),
		chromedp.Click(chromedp.CSS(`li.cnode ul li.cnode summary`)))
	shot("cascade.png")
	run(t, ctx, chromedp.Navigate(srv.URL+"/alerts"))
	shot("alerts.png")
	run(t, ctx, chromedp.Navigate(srv.URL+"/deadletters"),
		chromedp.Click(chromedp.CSS(`tr.deadletter[data-id="dl-3"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.result`)))
	shot("deadletters.png")
	run(t, ctx, chromedp.Navigate(srv.URL+"/ledger"))
	shot("ledger.png")
}
