package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/services/ingest/ingestenv"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/topic"
)

const (
	exampleKey   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	exampleRules = `[{"name": "billing", "class": "external", "key_ids": ["billing-1"], "types": ["autonomics.billing.*"], "tenants": ["*"]},
  {"name": "meter", "class": "external", "email": "meter@p.iam.gserviceaccount.com", "types": ["autonomics.quota_sla.usage_reported"], "tenants": ["acme"]}]`
	exampleKeys = `{"billing-1": "` + exampleKey + `"}`
)

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// files returns a readFile over contents.
func files(contents map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if c, ok := contents[name]; ok {
			return []byte(c), nil
		}
		return nil, fs.ErrNotExist
	}
}

func TestLoadConfig(t *testing.T) {
	base := map[string]string{platform.EnvProject: "p", ingestenv.Producers: exampleRules, ingestenv.HMACKeys: exampleKeys, ingestenv.Audience: "https://ingest.example"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	fileSet := map[string]string{"rules.json": exampleRules, "keys.json": exampleKeys}
	tests := []struct {
		name    string
		env     map[string]string
		src     sources
		wantErr string
	}{
		{name: "environment", env: base},
		{name: "files", env: with(ingestenv.Producers, "", ingestenv.HMACKeys, ""), src: sources{ProducersFile: "rules.json", KeysFile: "keys.json"}},
		{name: "no project", env: with(platform.EnvProject, ""), wantErr: platform.EnvProject},
		{name: "no rules", env: with(ingestenv.Producers, ""), wantErr: "producer rules are required"},
		{name: "rules twice", env: base, src: sources{ProducersFile: "rules.json"}, wantErr: "not both"},
		{name: "missing file", env: with(ingestenv.Producers, ""), src: sources{ProducersFile: "nope.json"}, wantErr: "-producers nope.json"},
		{name: "bad rules", env: with(ingestenv.Producers, `[{"name": "x"}]`), wantErr: "class"},
		{name: "missing key", env: with(ingestenv.HMACKeys, ""), wantErr: "signs with key billing-1"},
		{name: "bad keys", env: with(ingestenv.HMACKeys, `{"billing-1": "secret"}`), wantErr: "whsec_"},
		{name: "no audience", env: with(ingestenv.Audience, ""), wantErr: ingestenv.Audience + " is required"},
		{name: "no audience without token producers", env: with(ingestenv.Audience, "", ingestenv.Producers, `[{"name": "billing", "class": "external", "key_ids": ["billing-1"], "types": ["autonomics.billing.*"], "tenants": ["*"]}]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(env(tt.env), files(fileSet), tt.src)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("loadConfig = %v", err)
				}
				if c.Rules.ByKeyID("billing-1") == nil || len(c.Keys["billing-1"]) == 0 {
					t.Errorf("config %+v lacks billing's key", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("loadConfig = %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(exampleKey, ingest.KeyPrefix)) {
				t.Errorf("the error reveals a key: %v", err)
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-keygen"}, &out); err != nil {
		t.Fatal(err)
	}
	k := strings.TrimSpace(out.String())
	if _, err := ingest.ParseKeys([]byte(`{"k": "` + k + `"}`)); err != nil {
		t.Fatalf("-keygen printed %q: %v", k, err)
	}
}

func TestCheckPrintsProducers(t *testing.T) {
	for k, v := range map[string]string{platform.EnvProject: "p", ingestenv.Producers: exampleRules, ingestenv.HMACKeys: exampleKeys, ingestenv.Audience: "aud"} {
		t.Setenv(k, v)
	}
	var out bytes.Buffer
	if err := run([]string{"-check"}, &out); err != nil {
		t.Fatal(err)
	}
	var ps []map[string]any
	if err := json.Unmarshal(out.Bytes(), &ps); err != nil || len(ps) != 2 || ps[0]["rate"] != float64(ingest.DefaultRate) {
		t.Fatalf("-check printed %s (%v), want both producers with the default rate", out.String(), err)
	}
	if strings.Contains(out.String(), "whsec_") {
		t.Errorf("-check prints a key")
	}
}

// TestServiceOnEmulator wires the service as main does and sends a signed
// event through it to the emulator.
func TestServiceOnEmulator(t *testing.T) {
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("PUBSUB_EMULATOR_HOST is not set; start the emulator (make emulators) and export PUBSUB_EMULATOR_HOST=127.0.0.1:8781 to run this test")
	}
	project := fmt.Sprintf("ingest-main-%08x", rand.Uint32())
	ctx := context.Background()
	client, err := ps.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	names := topic.Names{Prefix: fmt.Sprintf("m%06x-", rand.Uint32()>>8)}
	tp := names.Domain("billing")
	if err := pubsub.Ensure(ctx, client, project, []string{tp}, []pubsub.Subscription{{Name: tp + "-test", Topic: tp}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(env(map[string]string{platform.EnvProject: project, ingestenv.Producers: exampleRules, ingestenv.HMACKeys: exampleKeys, ingestenv.Audience: "aud"}), files(nil), sources{})
	if err != nil {
		t.Fatal(err)
	}
	pub := pubsub.NewPublisher(client, pubsub.PublisherOptions{DelayThreshold: time.Millisecond})
	defer pub.Close()
	clients := &platform.Clients{Config: cfg.Platform, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PubSub: client, Publisher: pub, Topics: names}
	srv, err := newServer(ctx, cfg, clients)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	body := []byte(`{"specversion":"1.0","id":"pay-42","source":"billing","type":"autonomics.billing.payment_failed","tenantid":"acme","subject":"inv-7","data":{"reason":"card_declined"}}`)
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", ingest.StructuredContentType)
	req.Header.Set(ingest.HeaderWebhookID, "msg_1")
	req.Header.Set(ingest.HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(ingest.HeaderKeyID, "billing-1")
	req.Header.Set(ingest.HeaderWebhookSignature, ingest.Sign(cfg.Keys["billing-1"], "msg_1", ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("answer %d %s, want 202", resp.StatusCode, b)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got := make(chan *ps.Message, 1)
	err = pubsub.Receive(rctx, client, topic.SubscriptionName(project, tp+"-test"), func(_ context.Context, m *ps.Message) {
		m.Ack()
		select {
		case got <- m:
			cancel()
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
		if err != nil || ev.ID != "pay-42" || ev.Source != "ingest/billing" || m.OrderingKey != "acme" {
			t.Fatalf("published %+v (ordering key %q), %v; want pay-42 from ingest/billing keyed acme", ev, m.OrderingKey, err)
		}
	default:
		t.Fatal("nothing published")
	}
}
