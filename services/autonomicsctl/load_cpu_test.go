package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    int64
		wantErr bool
	}{
		{"plain", "17107 (serve) S 1 17107 17107 0 -1 4194560 9055 0 0 0 700 116 0 0 20 0 9 0 1201 0 0", 816, false},
		{"name with spaces and parentheses", "42 (a (b) c)) R 1 1 1 0 -1 0 0 0 0 0 5 7 0 0 20 0", 12, false},
		{"no parentheses", "42 serve S 1 1 1 0 -1 0 0 0 0 0 5 7", 0, true},
		{"truncated", "42 (serve) S 1 1 1 0 -1 0 0 0 0", 0, true},
		{"negative utime", "42 (serve) S 1 1 1 0 -1 0 0 0 0 0 -5 7 0", 0, true},
		{"non-numeric stime", "42 (serve) S 1 1 1 0 -1 0 0 0 0 0 5 x 0", 0, true},
		{"empty", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.stat)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("parseProcStat(%q) = %d, %v, want %d, error %v", tt.stat, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseMachineStat(t *testing.T) {
	tests := []struct {
		name      string
		stat      string
		wantBusy  int64
		wantCores int
		wantErr   bool
	}{
		{"two cores", "cpu  100 1 50 1000 20 3 4 2 0 0\ncpu0 50 0 25 500 10 1 2 1 0 0\ncpu1 50 1 25 500 10 2 2 1 0 0\nintr 1\n", 160, 2, false},
		{"no cpu line", "intr 1\nctxt 2\n", 0, 0, true},
		{"short cpu line", "cpu 1 2 3\n", 0, 0, true},
		{"garbage tick", "cpu 1 2 3 4 5 6 x 8\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			busy, cores, err := parseMachineStat(tt.stat)
			if busy != tt.wantBusy || cores != tt.wantCores || (err != nil) != tt.wantErr {
				t.Errorf("parseMachineStat = %d, %d, %v, want %d, %d, error %v", busy, cores, err, tt.wantBusy, tt.wantCores, tt.wantErr)
			}
		})
	}
}

func TestListeningInodes(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:224C 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5551 1 0000000000000000 100 0 0 10 0
   1: 0100007F:224C 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000  1000        0 5552 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:224D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5553 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1224C 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5554 1 0000000000000000 100 0 0 10 0
`
	got := listeningInodes(table, 8780)
	if len(got) != 1 || got[0] != "5551" {
		t.Errorf("listeningInodes(port 8780) = %v, want [5551]: only the listening socket of that port", got)
	}
	if got := listeningInodes(table, 1); len(got) != 0 {
		t.Errorf("listeningInodes(port 1) = %v, want none", got)
	}
}

func TestCPUBetween(t *testing.T) {
	at := time.Unix(1000, 0)
	procs := []cpuProcess{{Name: "functions host", PID: 10}, {Name: "gone", PID: 11}, {Name: "unknown", Note: "no listener"}}
	a := cpuSnapshot{at: at, ticks: map[int]int64{10: 1000, 11: 5}, errs: map[int]string{}, busy: 10_000, cores: 2}
	b := cpuSnapshot{at: at.Add(10 * time.Second), ticks: map[int]int64{10: 1300}, errs: map[int]string{11: "no such process"}, busy: 11_500, cores: 2}
	r := cpuBetween(procs, a, b, 6000)
	want := []cpuUsage{
		{Process: "functions host", PID: 10, Seconds: 3, MsPerDecision: 0.5, Cores: 0.3},
		{Process: "gone", PID: 11, Note: "no such process"},
		{Process: "unknown", Note: "no listener"},
	}
	if len(r.Processes) != len(want) {
		t.Fatalf("cpuBetween = %+v, want %+v", r.Processes, want)
	}
	for i := range want {
		if r.Processes[i] != want[i] {
			t.Errorf("process %d = %+v, want %+v", i, r.Processes[i], want[i])
		}
	}
	if r.WallSeconds != 10 || r.Decisions != 6000 || r.MachineBusyCores != 1.5 || r.MachineCores != 2 {
		t.Errorf("cpuBetween = wall %v decisions %d busy %v of %d, want 10 6000 1.5 of 2", r.WallSeconds, r.Decisions, r.MachineBusyCores, r.MachineCores)
	}
}

func TestCPUFiguresWithoutDecisions(t *testing.T) {
	sec, per, cores := cpuFigures(250, 0, 0)
	if sec != 2.5 || per != 0 || cores != 0 {
		t.Errorf("cpuFigures(250 ticks, 0 decisions, 0 wall) = %v, %v, %v, want 2.5, 0, 0", sec, per, cores)
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]int{"127.0.0.1:8780": 8780, "[::1]:8781": 8781, "localhost": 0, "h:x": 0} {
		if got := hostPort(in); got != want {
			t.Errorf("hostPort(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestCompareCPU(t *testing.T) {
	direct := &cpuReport{Decisions: 6000, WallSeconds: 45, MachineBusyCores: 2, MachineCores: 2, Processes: []cpuUsage{
		{Process: functionsProcess, MsPerDecision: 1.2},
		{Process: "Firestore emulator", MsPerDecision: 6.5},
		{Process: "Pub/Sub emulator", MsPerDecision: 5.5},
		{Process: "monitor", Note: "not readable"},
		{Process: driverProcess, MsPerDecision: 0.3},
	}}
	bare := &cpuReport{Decisions: 6000, WallSeconds: 13.5, MachineBusyCores: 2, MachineCores: 2, Processes: []cpuUsage{
		{Process: functionsProcess, MsPerDecision: 0.001},
		{Process: "Firestore emulator", MsPerDecision: 3.5},
		{Process: "Pub/Sub emulator", MsPerDecision: 0.01},
		{Process: "monitor", MsPerDecision: 0.01},
		{Process: driverProcess, Note: "not readable"},
	}}
	noMachine := &cpuReport{Decisions: 6000, WallSeconds: 13.5, Processes: bare.Processes}
	tests := []struct {
		name          string
		direct, bare  *cpuReport
		wantProcesses []string
		wantMachine   cpuShare
		wantPredicted float64
	}{
		{"both phases measured", direct, bare,
			[]string{functionsProcess, "Firestore emulator", "Pub/Sub emulator"},
			cpuShare{Process: "machine (all processes)", Decision: 15, Bare: 4.5}, 0.3},
		{"machine not read in the baseline", direct, noMachine,
			[]string{functionsProcess, "Firestore emulator", "Pub/Sub emulator"}, cpuShare{}, 0},
		{"no baseline", direct, nil, nil, cpuShare{}, 0},
		{"no direct phase", nil, bare, nil, cpuShare{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compareCPU(tt.direct, tt.bare)
			var got []string
			for _, p := range c.Processes {
				got = append(got, p.Process)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantProcesses, ",") {
				t.Errorf("processes %q, want %q (only those measured in both phases)", got, tt.wantProcesses)
			}
			if c.Machine != tt.wantMachine || c.Predicted != tt.wantPredicted {
				t.Errorf("machine %+v, predicted %v; want %+v, %v", c.Machine, c.Predicted, tt.wantMachine, tt.wantPredicted)
			}
		})
	}
	if c := compareCPU(direct, bare); c.Processes[1].Decision != 6.5 || c.Processes[1].Bare != 3.5 {
		t.Errorf("Firestore emulator %+v, want decision 6.5, bare 3.5", c.Processes[1])
	}
}

func TestPrintCPUComparisonNamesTheClientFloor(t *testing.T) {
	c := cpuComparison{
		Processes: []cpuShare{{Process: functionsProcess, Decision: 1.2, Bare: 0}, {Process: driverProcess, Decision: 0.3, Bare: 0.42}},
		Machine:   cpuShare{Process: "machine (all processes)", Decision: 15, Bare: 4.5}, Predicted: 0.3,
	}
	var b strings.Builder
	printCPUComparison(&b, c, 0.27)
	for _, want := range []string{"0.420 ms is what the client", "predicts a ratio of 0.300; measured 0.270", "machine (all processes)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	printCPUComparison(&b, cpuComparison{}, 0.27)
	if b.Len() != 0 {
		t.Errorf("an empty comparison printed %q, want nothing", b.String())
	}
}

func TestWithGoRuntime(t *testing.T) {
	procs, gc, limit := runtime.GOMAXPROCS(0), debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(gc)
	unset := func(string) (string, bool) { return "", false }
	restore := withGoRuntime([]string{"GOMAXPROCS=1", "GOGC=400", "GOMEMLIMIT=384MiB"}, unset)
	gotProcs, gotGC, gotLimit := runtime.GOMAXPROCS(0), debug.SetGCPercent(400), debug.SetMemoryLimit(-1)
	restore()
	if gotProcs != 1 || gotGC != 400 || gotLimit != 384<<20 {
		t.Errorf("within: GOMAXPROCS %d, GOGC %d, GOMEMLIMIT %d; want 1, 400, %d", gotProcs, gotGC, gotLimit, 384<<20)
	}
	if p, g, l := runtime.GOMAXPROCS(0), debug.SetGCPercent(gc), debug.SetMemoryLimit(-1); p != procs || g != gc || l != limit {
		t.Errorf("restored: GOMAXPROCS %d, GOGC %d, GOMEMLIMIT %d; want %d, %d, %d", p, g, l, procs, gc, limit)
	}

	// A setting of the caller's environment, or one that does not parse,
	// is left alone.
	callerSetGOGC := func(name string) (string, bool) { return "off", name == "GOGC" }
	restore = withGoRuntime([]string{"GOGC=400", "GOMEMLIMIT=lots"}, callerSetGOGC)
	g, l := debug.SetGCPercent(gc), debug.SetMemoryLimit(-1)
	restore()
	if g != gc || l != limit {
		t.Errorf("GOGC %d, GOMEMLIMIT %d; want the process's %d, %d", g, l, gc, limit)
	}
}
