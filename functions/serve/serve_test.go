package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/topic"

	ps "cloud.google.com/go/pubsub/v2"
)

// project isolates this test's data on the shared emulators.
const project = "serve-test"

// TestPushThroughFunctionsFramework serves the real functions with the
// Functions Framework and posts Pub/Sub push bodies to them, as the
// emulator's push subscriptions do: the framework turns each into a
// messagePublished CloudEvent and the governor applies it.
func TestPushThroughFunctionsFramework(t *testing.T) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" || os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are not set: emulator tests are off")
	}
	prefix := fmt.Sprintf("fn%d-", rand.Uint32())
	t.Setenv("AUTONOMICS_PROJECT", project)
	t.Setenv("AUTONOMICS_TOPIC_PREFIX", prefix)
	t.Setenv("FUNCTION_TARGET", "")
	ctx := context.Background()
	pc, err := ps.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	names := topic.Names{Prefix: prefix}
	if err := pubsub.Ensure(ctx, pc, project, names.All(), []pubsub.Subscription{{Name: prefix + "dl", Topic: names.DeadLetter()}}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	go func() { _ = funcframework.StartHostPort("127.0.0.1", port) }()
	if err := waitListening(ctx, "127.0.0.1:"+port); err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port
	tenant := fmt.Sprintf("fn-%x", rand.Uint64())

	post := func(path string, body []byte) int {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	binary := governor.Event{ID: "e1", Source: "//test", Type: "autonomics.customer_account.requested",
		Domain: governor.CustomerAccount, Name: "requested", Tenant: tenant, Subject: "default"}
	data, attrs := event.Encode(binary)
	if code := post("/CustomerAccount", event.PushBody(data, attrs, "m1")); code != http.StatusOK {
		t.Fatalf("binary push = %d, want 200", code)
	}
	structured := governor.Event{ID: "e2", Source: "//test", Type: "autonomics.customer_account.verified",
		Domain: governor.CustomerAccount, Name: "verified", Tenant: tenant, Subject: "default"}
	sdata, err := event.EncodeStructured(structured)
	if err != nil {
		t.Fatal(err)
	}
	if code := post("/CustomerAccount", event.PushBody(sdata, map[string]string{"content-type": event.StructuredContentType}, "m2")); code != http.StatusOK {
		t.Fatalf("structured push = %d, want 200", code)
	}
	// Hostile input is acknowledged (2xx) after dead-lettering, never retried.
	if code := post("/CustomerAccount", event.PushBody([]byte(`{"oops"`), map[string]string{"ce-tenantid": "../x"}, "m3")); code != http.StatusOK {
		t.Errorf("hostile push = %d, want 200 (dead-lettered)", code)
	}
	// A function receives only its own domain.
	if code := post("/Billing", event.PushBody(data, attrs, "m4")); code != http.StatusOK {
		t.Errorf("misrouted push = %d, want 200 (dead-lettered)", code)
	}

	fc, err := fs.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	st := firestore.New(fc, firestore.Options{})
	insts, err := st.Instances(ctx, tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 1 || insts[0].State != "active" || insts[0].Version != 2 {
		t.Fatalf("instances = %+v, want customer_account active v2", insts)
	}
	var got atomic.Int32
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_ = pubsub.Receive(rctx, pc, prefix+"dl", func(_ context.Context, m *ps.Message) {
		m.Ack()
		if m.Attributes["dead_letter_reason"] != "" && got.Add(1) == 2 {
			cancel()
		}
	})
	if got := got.Load(); got != 2 {
		t.Errorf("dead-lettered = %d, want 2", got)
	}
	// Tick and Sweep answer as Cloud Scheduler expects.
	for _, path := range []string{"/Tick", "/Sweep"} {
		resp, err := http.Post(base+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || body["processed"] == nil {
			t.Errorf("POST %s = %d %v", path, resp.StatusCode, body)
		}
	}
}
