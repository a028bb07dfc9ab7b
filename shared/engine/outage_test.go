package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// privateEmulator starts a Firestore emulator of the test's own, so that
// it can be stopped and resumed without disturbing other tests.
func privateEmulator(t *testing.T) (host string, pgid int) {
	t.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST is not set: emulator tests are off")
	}
	if _, err := exec.LookPath("gcloud"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcloud is not installed: CI must run the Firestore outage test")
		}
		t.Skip("gcloud is not installed: cannot start a private Firestore emulator")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host = l.Addr().String()
	l.Close()
	cmd := exec.Command("gcloud", "emulators", "firestore", "start", "--host-port="+host, "--quiet")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	pgid = cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/")
		if err == nil {
			resp.Body.Close()
			return host, pgid
		}
		if time.Now().After(deadline) {
			t.Fatalf("private emulator at %s did not start", host)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitStopped returns once every thread of the process group pgid is
// stopped and the emulator at host no longer answers: a stop signal takes
// effect on each thread when it next runs, and on a loaded machine the
// emulator may serve requests in the meantime.
func waitStopped(t *testing.T, host string, pgid int) {
	t.Helper()
	probe := &http.Client{Timeout: 300 * time.Millisecond}
	deadline := time.Now().Add(30 * time.Second)
	for {
		stopped, err := groupStopped(pgid)
		if err != nil {
			t.Fatalf("process group %d: %v", pgid, err)
		}
		if stopped {
			resp, err := probe.Get("http://" + host + "/")
			if err != nil {
				return
			}
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator at %s (process group %d) still runs 30s after SIGSTOP", host, pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupStopped reports whether every thread of every process in process
// group pgid is stopped (state T or t in /proc/<pid>/task/<tid>/stat).
func groupStopped(pgid int) (bool, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	found := false
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if state, pg, ok := procState(fmt.Sprintf("/proc/%d/stat", pid)); !ok || pg != pgid || state == 'Z' {
			continue
		}
		found = true
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			continue // exited meanwhile
		}
		for _, task := range tasks {
			state, _, ok := procState(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if ok && state != 'T' && state != 't' && state != 'Z' {
				return false, nil
			}
		}
	}
	if !found {
		return false, fmt.Errorf("no process left")
	}
	return true, nil
}

// procState reads the state and process group of a /proc stat file.
func procState(path string) (state byte, pgid int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pg, true
}

// TestFirestoreOutage stops the Firestore emulator mid-run and resumes it:
// while it is down every delivery fails with a retryable error and nothing
// is dead-lettered; once it is back, redelivery applies every event exactly
// once.
func TestFirestoreOutage(t *testing.T) {
	host, pgid := privateEmulator(t)
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	fc, err := fs.NewClient(context.Background(), emulatorProject)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	h := newHarness(t, "outage", firestore.New(fc, firestore.Options{MaxAttempts: 5}), nil)
	h.eng.o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	tenant := newTenant(t)
	var events []governor.Event
	for i := range 10 {
		events = append(events, ev(tenant, governor.Billing, "usage_recorded", "2026-11", fmt.Sprintf(`{"meter":"api_calls","quantity":%d}`, i+1)))
	}
	deliver := func(e governor.Event, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return h.eng.HandleMessage(ctx, governor.Billing, message(e))
	}
	for _, e := range events[:5] {
		if err := deliver(e, 30*time.Second); err != nil {
			t.Fatalf("before the outage: %v", err)
		}
	}
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stop emulator: %v", err)
	}
	waitStopped(t, host, pgid)
	var failed []governor.Event
	for _, e := range events[5:] {
		err := deliver(e, 2*time.Second)
		if err == nil {
			t.Errorf("delivery during the outage succeeded")
			continue
		}
		if !fault.IsRetryable(err) {
			t.Errorf("delivery during the outage = %v (code %s), want a retryable error", err, fault.ErrorCode(err))
		}
		failed = append(failed, e)
	}
	if n := len(h.pub.on(h.topics.DeadLetter())); n != 0 {
		t.Errorf("dead-lettered %d events during the outage, want 0", n)
	}
	if err := syscall.Kill(-pgid, syscall.SIGCONT); err != nil {
		t.Fatalf("resume emulator: %v", err)
	}
	// Pub/Sub redelivers what failed, and some deliveries twice.
	for _, e := range append(failed, events[3:]...) {
		var err error
		for attempt := 0; attempt < 10; attempt++ {
			if err = deliver(e, 30*time.Second); err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("redelivery after the outage: %v", err)
		}
	}
	k := governor.Key{Tenant: tenant, Domain: governor.Billing, Subject: "2026-11"}
	chain, err := h.store.Chain(context.Background(), k, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != len(events) {
		t.Fatalf("receipts = %d, want %d (each event exactly once)", len(chain), len(events))
	}
	if err := receipt.Verify(chain); err != nil {
		t.Errorf("Verify = %v", err)
	}
	seen := map[string]bool{}
	for _, r := range chain {
		if seen[r.ExecutionID] {
			t.Errorf("event %s applied twice", r.ExecutionID)
		}
		seen[r.ExecutionID] = true
	}
}
