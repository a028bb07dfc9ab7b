package health

import (
	"bufio"
	"bytes"
	"io/fs"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Usage is the resource usage of the instance.
type Usage struct {
	// CPU is the share of the CPU capacity used since the previous
	// sample, 0 to 1 (may exceed 1 briefly with coarse accounting).
	CPU float64 `json:"cpu"`
	// CPUCores is the capacity: the cgroup quota, or the machine's CPUs.
	CPUCores float64 `json:"cpu_cores"`
	// Memory is MemoryBytes / MemoryLimitBytes.
	Memory           float64 `json:"memory"`
	MemoryBytes      uint64  `json:"memory_bytes"`
	MemoryLimitBytes uint64  `json:"memory_limit_bytes"`
	Goroutines       int     `json:"goroutines"`
	// Source says where the figures come from: cgroup2, cgroup1 or proc.
	Source string `json:"source"`
}

// Sampler reads the instance's resource usage. CPU utilisation needs two
// readings; Sample compares with the previous one when it is at least
// MinInterval old and otherwise returns the previous figures. It is safe
// for concurrent use.
type Sampler struct {
	fsys  fs.FS
	clock func() time.Time
	cpus  int

	mu       sync.Mutex
	prevAt   time.Time
	prevCPU  float64
	lastCPU  float64
	hasPrev  bool
	interval time.Duration
}

// MinInterval is the shortest interval over which CPU is measured.
const MinInterval = time.Second

// NewSampler returns a sampler reading the file system fsys rooted at "/"
// (os.DirFS("/") in production) with clock (time.Now when nil).
func NewSampler(fsys fs.FS, clock func() time.Time) *Sampler {
	if fsys == nil {
		fsys = os.DirFS("/")
	}
	if clock == nil {
		clock = time.Now
	}
	return &Sampler{fsys: fsys, clock: clock, cpus: runtime.NumCPU(), interval: MinInterval}
}

// source describes where to read the counters.
type source struct {
	kind string
	// cpuFile holds cumulative CPU time; cpuScale converts its unit to seconds.
	cpuFile  string
	cpuScale float64
	// memory
	memCurrent, memLimit, memStat, inactiveKey string
	// quota
	quota func() float64
}

// Sample returns the current usage.
func (s *Sampler) Sample() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	u := Usage{Goroutines: runtime.NumGoroutine(), CPUCores: float64(s.cpus)}
	src := s.detect()
	u.Source = src.kind
	if src.quota != nil {
		if q := src.quota(); q > 0 {
			u.CPUCores = q
		}
	}
	if used, ok := s.cpuSeconds(src); ok {
		if s.hasPrev {
			if dt := now.Sub(s.prevAt); dt >= s.interval {
				s.lastCPU = math.Max(0, (used-s.prevCPU)/(dt.Seconds()*u.CPUCores))
				s.prevAt, s.prevCPU = now, used
			}
		} else {
			s.prevAt, s.prevCPU, s.hasPrev = now, used, true
		}
	}
	u.CPU = s.lastCPU
	u.MemoryBytes, u.MemoryLimitBytes = s.memory(src)
	if u.MemoryLimitBytes > 0 {
		u.Memory = float64(u.MemoryBytes) / float64(u.MemoryLimitBytes)
	}
	return u
}

// detect finds the process's cgroup, v2 first.
func (s *Sampler) detect() source {
	paths := s.cgroupPaths()
	if p, ok := paths[""]; ok {
		for _, dir := range []string{"sys/fs/cgroup" + p, "sys/fs/cgroup"} {
			dir = strings.TrimSuffix(dir, "/")
			if s.exists(dir + "/cpu.stat") {
				return source{
					kind: "cgroup2", cpuFile: dir + "/cpu.stat", cpuScale: 1e-6,
					memCurrent: dir + "/memory.current", memLimit: dir + "/memory.max",
					memStat: dir + "/memory.stat", inactiveKey: "inactive_file",
					quota: func() float64 { return s.quotaV2(dir + "/cpu.max") },
				}
			}
		}
	}
	cpuDir := s.v1Dir(paths, "cpuacct", "cpu,cpuacct", "cpuacct,cpu")
	memDir := s.v1Dir(paths, "memory")
	if cpuDir != "" && s.exists(cpuDir+"/cpuacct.usage") {
		src := source{kind: "cgroup1", cpuFile: cpuDir + "/cpuacct.usage", cpuScale: 1e-9,
			quota: func() float64 { return s.quotaV1(cpuDir) }}
		if memDir != "" {
			src.memCurrent, src.memLimit = memDir+"/memory.usage_in_bytes", memDir+"/memory.limit_in_bytes"
			src.memStat, src.inactiveKey = memDir+"/memory.stat", "total_inactive_file"
		}
		return src
	}
	return source{kind: "proc"}
}

// cgroupPaths parses /proc/self/cgroup: controller list → path, with ""
// for the v2 unified hierarchy.
func (s *Sampler) cgroupPaths() map[string]string {
	out := map[string]string{}
	b, err := fs.ReadFile(s.fsys, "proc/self/cgroup")
	if err != nil {
		// Without the file, look in the usual places.
		out[""] = "/"
		return out
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		out[parts[1]] = parts[2]
	}
	return out
}

// v1Dir returns the v1 hierarchy directory of the first controller of
// names that exists: the process's own cgroup if mounted, else the mount.
func (s *Sampler) v1Dir(paths map[string]string, names ...string) string {
	for _, n := range names {
		for _, dir := range []string{"sys/fs/cgroup/" + n + paths[n], "sys/fs/cgroup/" + n} {
			if dir = strings.TrimSuffix(dir, "/"); s.isDir(dir) {
				return dir
			}
		}
	}
	return ""
}

func (s *Sampler) exists(name string) bool {
	_, err := fs.Stat(s.fsys, name)
	return err == nil
}

func (s *Sampler) isDir(name string) bool {
	st, err := fs.Stat(s.fsys, name)
	return err == nil && st.IsDir()
}

func (s *Sampler) readUint(name string) (uint64, bool) {
	b, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// statValue returns the value of key in a "key value" per line file.
func (s *Sampler) statValue(name, key string) (uint64, bool) {
	b, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == key {
			n, err := strconv.ParseUint(f[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// cpuSeconds returns the cumulative CPU time of the cgroup or process.
func (s *Sampler) cpuSeconds(src source) (float64, bool) {
	switch src.kind {
	case "cgroup2":
		n, ok := s.statValue(src.cpuFile, "usage_usec")
		return float64(n) * src.cpuScale, ok
	case "cgroup1":
		n, ok := s.readUint(src.cpuFile)
		return float64(n) * src.cpuScale, ok
	}
	b, err := fs.ReadFile(s.fsys, "proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the parenthesised command: utime and stime are the
	// 14th and 15th fields of the line, in clock ticks (USER_HZ, 100).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(ut+st) / 100, true
}

// quotaV2 reads cpu.max: "max 100000" means no quota.
func (s *Sampler) quotaV2(name string) float64 {
	b, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	q, err1 := strconv.ParseFloat(f[0], 64)
	p, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || p <= 0 {
		return 0
	}
	return q / p
}

// quotaV1 reads cpu.cfs_quota_us (-1 means no quota) and cpu.cfs_period_us.
func (s *Sampler) quotaV1(dir string) float64 {
	b, err := fs.ReadFile(s.fsys, dir+"/cpu.cfs_quota_us")
	if err != nil {
		return 0
	}
	q, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil || q <= 0 {
		return 0
	}
	p, ok := s.readUint(dir + "/cpu.cfs_period_us")
	if !ok || p == 0 {
		return 0
	}
	return q / float64(p)
}

// unlimited is the v1 "no limit" value (and anything near it).
const unlimited = 1 << 60

// memory returns the working set (usage minus inactive file cache) and
// the limit; without a cgroup limit, the machine's memory.
func (s *Sampler) memory(src source) (used, limit uint64) {
	if src.memCurrent != "" {
		if cur, ok := s.readUint(src.memCurrent); ok {
			used = cur
			if inactive, ok := s.statValue(src.memStat, src.inactiveKey); ok && inactive < used {
				used -= inactive
			}
			if l, ok := s.readUint(src.memLimit); ok && l < unlimited {
				limit = l
			}
		}
	}
	if used == 0 {
		if rss, ok := s.statKB("proc/self/status", "VmRSS:"); ok {
			used = rss
		}
	}
	if limit == 0 {
		if total, ok := s.statKB("proc/meminfo", "MemTotal:"); ok {
			limit = total
		}
	}
	return used, limit
}

// statKB reads a "Key:   123 kB" line and returns bytes.
func (s *Sampler) statKB(name, key string) (uint64, bool) {
	b, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == key {
			n, err := strconv.ParseUint(f[1], 10, 64)
			return n * 1024, err == nil
		}
	}
	return 0, false
}
