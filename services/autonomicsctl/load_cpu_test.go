package main

import (
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
