package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat:
// 100 on every Linux architecture the stack runs on.
const clockTicks = 100

// maxProcFileBytes bounds what is read of one /proc file.
const maxProcFileBytes = 1 << 20

// functionsProcess names the functions host in the CPU tables.
const functionsProcess = "functions host"

// driverProcess names the load driver in the CPU tables. In the baseline
// it is the Firestore client of the bare transactions.
const driverProcess = "autonomicsctl (load driver)"

// cpuProcess is a process whose CPU time a phase measures.
type cpuProcess struct {
	Name string
	PID  int
	// Note says why the process is not measured when PID is 0.
	Note string
}

// cpuUsage is the CPU a process used during a phase.
type cpuUsage struct {
	Process string  `json:"process"`
	PID     int     `json:"pid,omitempty"`
	Seconds float64 `json:"cpu_seconds"`
	// MsPerDecision is the CPU time divided by the decisions of the phase.
	MsPerDecision float64 `json:"ms_per_decision"`
	// Cores is the CPU time divided by the phase's wall time.
	Cores float64 `json:"cores"`
	Note  string  `json:"note,omitempty"`
}

// cpuReport is the CPU table of a phase.
type cpuReport struct {
	Decisions   int        `json:"decisions"`
	WallSeconds float64    `json:"wall_seconds"`
	Processes   []cpuUsage `json:"processes"`
	// MachineBusyCores is the whole machine's busy CPU time divided by
	// the wall time, out of MachineCores.
	MachineBusyCores float64 `json:"machine_busy_cores,omitempty"`
	MachineCores     int     `json:"machine_cores,omitempty"`
}

// cpuSnapshot is the CPU time of each process and of the machine at an
// instant.
type cpuSnapshot struct {
	at      time.Time
	ticks   map[int]int64
	errs    map[int]string
	busy    int64
	cores   int
	busyErr error
}

// takeCPUSnapshot reads the CPU times of procs and of the machine.
func takeCPUSnapshot(procs []cpuProcess) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), ticks: make(map[int]int64, len(procs)), errs: map[int]string{}}
	for _, p := range procs {
		if p.PID <= 0 {
			continue
		}
		t, err := readProcTicks(p.PID)
		if err != nil {
			s.errs[p.PID] = err.Error()
			continue
		}
		s.ticks[p.PID] = t
	}
	s.busy, s.cores, s.busyErr = readMachineBusy()
	return s
}

// cpuBetween returns the CPU each process used from a to b, per decision.
func cpuBetween(procs []cpuProcess, a, b cpuSnapshot, decisions int) cpuReport {
	wall := b.at.Sub(a.at)
	r := cpuReport{Decisions: decisions, WallSeconds: roundTo(wall.Seconds(), 2)}
	for _, p := range procs {
		u := cpuUsage{Process: p.Name, PID: p.PID, Note: p.Note}
		t0, ok0 := a.ticks[p.PID]
		t1, ok1 := b.ticks[p.PID]
		switch {
		case p.PID <= 0:
		case !ok0 || !ok1:
			u.Note = firstNonEmpty(a.errs[p.PID], b.errs[p.PID], "not readable")
		default:
			u.Seconds, u.MsPerDecision, u.Cores = cpuFigures(t1-t0, decisions, wall)
		}
		r.Processes = append(r.Processes, u)
	}
	if a.busyErr == nil && b.busyErr == nil && wall > 0 {
		r.MachineBusyCores = roundTo(float64(b.busy-a.busy)/clockTicks/wall.Seconds(), 2)
		r.MachineCores = b.cores
	}
	return r
}

// cpuFigures converts a CPU time in clock ticks into seconds, milliseconds
// per decision and cores over wall.
func cpuFigures(ticks int64, decisions int, wall time.Duration) (seconds, msPerDecision, cores float64) {
	sec := float64(ticks) / clockTicks
	if decisions > 0 {
		msPerDecision = roundTo(sec*1000/float64(decisions), 3)
	}
	if wall > 0 {
		cores = roundTo(sec/wall.Seconds(), 2)
	}
	return roundTo(sec, 2), msPerDecision, cores
}

// readProcTicks returns utime+stime of pid from /proc/<pid>/stat.
func readProcTicks(pid int) (int64, error) {
	b, err := readProcFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat extracts utime+stime, in clock ticks, from the content of
// a /proc/<pid>/stat file. The command name (field 2) is in parentheses
// and may hold spaces and parentheses itself, so the fields are counted
// from the last ')'.
func parseProcStat(stat string) (int64, error) {
	const op = "autonomicsctl.parseProcStat"
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fault.Errorf(fault.Invalid, op, "no command name in parentheses")
	}
	// After the name: state (field 3) … utime (14), stime (15).
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fault.Errorf(fault.Invalid, op, "%d fields after the command name, want at least 13", len(f))
	}
	var sum int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, fault.Errorf(fault.Invalid, op, "CPU time %q is not a count of clock ticks", s)
		}
		sum += v
	}
	return sum, nil
}

// readMachineBusy returns the machine's busy CPU time (all but idle and
// iowait) in clock ticks, and its number of CPUs, from /proc/stat.
func readMachineBusy() (int64, int, error) {
	b, err := readProcFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseMachineStat(string(b))
}

// parseMachineStat parses the content of /proc/stat.
func parseMachineStat(stat string) (busy int64, cores int, err error) {
	const op = "autonomicsctl.parseMachineStat"
	found := false
	for _, line := range strings.Split(stat, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cores++
			continue
		}
		if len(f) < 9 {
			return 0, 0, fault.Errorf(fault.Invalid, op, "cpu line has %d fields, want at least 9", len(f))
		}
		// user nice system idle iowait irq softirq steal
		for j, s := range f[1:9] {
			v, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil || v < 0 {
				return 0, 0, fault.Errorf(fault.Invalid, op, "cpu time %q is not a count of clock ticks", s)
			}
			if j != 3 && j != 4 {
				busy += v
			}
		}
		found = true
	}
	if !found {
		return 0, 0, fault.Errorf(fault.NotFound, op, "no cpu line")
	}
	return busy, cores, nil
}

// readProcFile reads at most maxProcFileBytes of a /proc file.
func readProcFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxProcFileBytes))
}

// listenerPID returns the process listening on TCP port, found through the
// socket inodes of /proc/net/tcp{,6} and the descriptors in /proc/*/fd.
func listenerPID(port int) (int, error) {
	const op = "autonomicsctl.listenerPID"
	inodes := map[string]bool{}
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := readProcFile(path)
		if err != nil {
			continue
		}
		for _, ino := range listeningInodes(string(b), port) {
			inodes["socket:["+ino+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fault.Errorf(fault.NotFound, op, "no listener on port %d in /proc/net/tcp", port)
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil || !inodes[link] {
			continue
		}
		pid, err := strconv.Atoi(strings.Split(strings.TrimPrefix(fd, "/proc/"), "/")[0])
		if err == nil {
			return pid, nil
		}
	}
	return 0, fault.Errorf(fault.NotFound, op, "the listener on port %d belongs to no readable process", port)
}

// listeningInodes returns the socket inodes of the sockets listening on
// port in the content of /proc/net/tcp or /proc/net/tcp6.
func listeningInodes(table string, port int) []string {
	const listen = "0A"
	want := fmt.Sprintf(":%04X", port)
	var out []string
	sc := bufio.NewScanner(strings.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != listen || !strings.HasSuffix(f[1], want) {
			continue
		}
		out = append(out, f[9])
	}
	return out
}

// hostPort returns the port of a host:port address, or 0.
func hostPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0
	}
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		return 0
	}
	return p
}

// cpuProcesses returns the processes of the stack that a phase measures:
// the functions host, the receipt consumers, the query API, both
// emulators, and this program, which drives the load.
func (s *stack) cpuProcesses() []cpuProcess {
	procs := []cpuProcess{
		{Name: functionsProcess, PID: s.functions.pid()},
		{Name: "integrator", PID: s.integrator.pid()},
		{Name: "monitor", PID: s.monitor.pid()},
		{Name: "query API", PID: s.query.pid()},
	}
	for _, e := range []struct{ name, host string }{
		{"Firestore emulator", s.cfg.FirestoreHost}, {"Pub/Sub emulator", s.cfg.PubSubHost},
	} {
		pid, err := listenerPID(hostPort(e.host))
		p := cpuProcess{Name: e.name, PID: pid}
		if err != nil {
			p.Note = err.Error()
		}
		procs = append(procs, p)
	}
	return append(procs, cpuProcess{Name: driverProcess, PID: os.Getpid()})
}

// printCPUReport prints a phase's CPU table, per unit of work ("decision"
// or "transaction").
func printCPUReport(w io.Writer, r *cpuReport, unit string) {
	if r == nil {
		return
	}
	fmt.Fprintf(w, "  CPU over %.2fs and %d %ss (/proc/<pid>/stat utime+stime)\n", r.WallSeconds, r.Decisions, unit)
	fmt.Fprintf(w, "    %-28s %8s %10s %8s\n", "process", "cpu s", "ms/"+unit, "cores")
	for _, u := range r.Processes {
		if u.Note != "" && u.Seconds == 0 {
			fmt.Fprintf(w, "    %-28s not measured: %s\n", u.Process, u.Note)
			continue
		}
		fmt.Fprintf(w, "    %-28s %8.2f %10.3f %8.2f\n", u.Process, u.Seconds, u.MsPerDecision, u.Cores)
	}
	if r.MachineCores > 0 {
		fmt.Fprintf(w, "    %-28s %8s %10s %8.2f of %d\n", "machine (all processes)", "", "", r.MachineBusyCores, r.MachineCores)
	}
}

// cpuShare is the CPU one process, or the whole machine, spends on a
// decision of the direct phase and on a bare transaction, in milliseconds.
type cpuShare struct {
	Process  string
	Decision float64
	Bare     float64
}

// cpuComparison sets a decision's CPU beside a bare transaction's.
type cpuComparison struct {
	// Processes holds every process measured in both phases.
	Processes []cpuShare
	// Machine is the whole machine's busy time per decision and per
	// transaction; zero when /proc/stat was not read in both phases.
	Machine cpuShare
	// Predicted is Machine.Bare / Machine.Decision: on a machine that
	// both phases saturate, the ratio of their rates that their CPU
	// costs alone explain. Zero without Machine.
	Predicted float64
}

// compareCPU compares the direct phase's CPU per decision with the
// baseline's CPU per transaction.
func compareCPU(direct, bare *cpuReport) cpuComparison {
	var c cpuComparison
	if direct == nil || bare == nil {
		return c
	}
	base := make(map[string]cpuUsage, len(bare.Processes))
	for _, u := range bare.Processes {
		if u.Note == "" {
			base[u.Process] = u
		}
	}
	for _, u := range direct.Processes {
		b, ok := base[u.Process]
		if u.Note != "" || !ok {
			continue
		}
		c.Processes = append(c.Processes, cpuShare{Process: u.Process, Decision: u.MsPerDecision, Bare: b.MsPerDecision})
	}
	d, b := machineMsPer(direct), machineMsPer(bare)
	if d > 0 && b > 0 {
		c.Machine = cpuShare{Process: "machine (all processes)", Decision: d, Bare: b}
		c.Predicted = roundTo(b/d, 3)
	}
	return c
}

// machineMsPer returns the machine's busy CPU time per unit of r's work,
// in milliseconds, or 0 when it is not known.
func machineMsPer(r *cpuReport) float64 {
	if r.MachineCores == 0 || r.Decisions == 0 {
		return 0
	}
	return roundTo(r.MachineBusyCores*r.WallSeconds*1000/float64(r.Decisions), 3)
}

// printCPUComparison prints c with the measured ratio of the rates.
func printCPUComparison(w io.Writer, c cpuComparison, measured float64) {
	if len(c.Processes) == 0 {
		return
	}
	fmt.Fprintf(w, "  CPU of a decision against a bare transaction (ms)\n")
	fmt.Fprintf(w, "    %-28s %10s %10s\n", "process", "decision", "bare tx")
	for _, s := range append(c.Processes, c.Machine) {
		if s.Process == "" {
			continue
		}
		fmt.Fprintf(w, "    %-28s %10.3f %10.3f\n", s.Process, s.Decision, s.Bare)
	}
	for _, s := range c.Processes {
		if s.Process == driverProcess {
			fmt.Fprintf(w, "    (in the baseline the load driver is the Firestore client: %.3f ms is what the client\n"+
				"    alone costs a transaction of the decision's shape)\n", s.Bare)
		}
	}
	if c.Predicted > 0 {
		fmt.Fprintf(w, "    the machine's CPU alone predicts a ratio of %.3f; measured %.3f\n", c.Predicted, measured)
	}
}
