package receipt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

var testKey = governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}

// tamperChain is a chain whose receipts all emit actions, so that a
// change to a position field shows in the action ids.
func tamperChain(t *testing.T, n int) []Receipt {
	t.Helper()
	inst := billingInstance(0, "")
	var chain []Receipt
	for i := range n {
		r := New(inst, billingEvent(fmt.Sprintf("ev-%d", i)), dunningDecision(), t0.Add(time.Duration(i)*time.Second))
		chain = append(chain, r)
		inst.Version, inst.LastHash = r.Seq, r.Hash
	}
	if err := Verify(chain); err != nil {
		t.Fatalf("Verify(tamperChain) = %v, want nil", err)
	}
	return chain
}

// checkChainError asserts that err is a *ChainError at index with problem,
// or nil when problem is "".
func checkChainError(t *testing.T, what string, err error, index int, problem Problem) {
	t.Helper()
	if problem == "" {
		if err != nil {
			t.Errorf("Verify(%s) = %v, want nil", what, err)
		}
		return
	}
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Errorf("Verify(%s) = %v, want *ChainError %s at index %d", what, err, problem, index)
		return
	}
	if ce.Index != index || ce.Problem != problem {
		t.Errorf("Verify(%s) = %v, want %s at index %d", what, err, problem, index)
	}
}

// mutation changes one field of a receipt.
type mutation struct {
	field  string // Go field name; "Actions[i].Field" for action fields
	mutate func(r *Receipt)
}

// mutations returns one mutation per field of Receipt and of each of its
// actions, found by reflection so that a new field cannot be forgotten.
func mutations(r *Receipt) []mutation {
	var out []mutation
	rt := reflect.TypeFor[Receipt]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		switch f.Type.Kind() {
		case reflect.String:
			out = append(out, mutation{f.Name, func(r *Receipt) {
				v := reflect.ValueOf(r).Elem().Field(i)
				v.SetString(tweak(v.String()))
			}})
		case reflect.Int64:
			out = append(out, mutation{f.Name, func(r *Receipt) {
				v := reflect.ValueOf(r).Elem().Field(i)
				v.SetInt(v.Int() + 1)
			}})
		case reflect.Slice: // Actions
			at := f.Type.Elem()
			for a := range r.Actions {
				for j := range at.NumField() {
					out = append(out, mutation{fmt.Sprintf("Actions[%d].%s", a, at.Field(j).Name), func(r *Receipt) {
						r.Actions = slices.Clone(r.Actions)
						v := reflect.ValueOf(&r.Actions[a]).Elem().Field(j)
						v.SetString(tweak(v.String()))
					}})
				}
			}
			out = append(out,
				mutation{"Actions+", func(r *Receipt) {
					r.Actions = append(slices.Clone(r.Actions), Action{Kind: "event", Type: "x", Domain: "billing", Subject: "s", ID: ActionID(r, len(r.Actions))})
				}},
				mutation{"Actions-", func(r *Receipt) { r.Actions = slices.Clone(r.Actions[:len(r.Actions)-1]) }},
			)
		default:
			panic("receipt field of unexpected kind " + f.Type.String())
		}
	}
	return out
}

// tweak changes s to another value of the same shape: a hex digit of a hash
// stays a hex digit.
func tweak(s string) string {
	if s == "" {
		return "x"
	}
	last := s[len(s)-1]
	switch {
	case last == '0':
		last = '1'
	case last >= '1' && last <= '9' || last >= 'a' && last <= 'f':
		last = '0'
	default:
		return s + "x"
	}
	return s[:len(s)-1] + string(last)
}

// afterRehash says which problem Verify reports, and where, when field of
// receipt i of an n-receipt chain (whose receipts all have actions) is
// changed and the hash recomputed.
func afterRehash(field string, i, n int) (int, Problem) {
	next := func() (int, Problem) {
		if i == n-1 {
			return 0, "" // an undetectable rewrite of the head; see Verifier.Head
		}
		return i + 1, BrokenLink
	}
	switch {
	case field == "TenantID" || field == "Domain" || field == "Subject":
		if i == 0 {
			return 0, BadActionID
		}
		return i, WrongInstance
	case field == "ExecutionID":
		return i, BadActionID
	case field == "Seq":
		return i, BadSequence
	case field == "PrevHash":
		return i, BrokenLink
	case field == "Outcome" || field == "DecidedAt" || strings.HasSuffix(field, ".Kind"):
		return i, Malformed
	case strings.HasSuffix(field, ".ID"):
		return i, BadActionID
	}
	return next()
}

func TestVerifyTamperOneField(t *testing.T) {
	const n = 4
	base := tamperChain(t, n)
	for i := range n {
		for _, m := range mutations(&base[i]) {
			t.Run(fmt.Sprintf("%d/%s", i, m.field), func(t *testing.T) {
				chain := slices.Clone(base)
				m.mutate(&chain[i])
				checkChainError(t, fmt.Sprintf("chain with %s of receipt %d changed", m.field, i), Verify(chain), i, HashMismatch)
				if m.field == "Hash" {
					return
				}
				chain[i].Hash = chain[i].ComputeHash()
				at, problem := afterRehash(m.field, i, n)
				checkChainError(t, fmt.Sprintf("chain with %s of receipt %d changed and rehashed", m.field, i), Verify(chain), at, problem)
			})
		}
	}
}

func TestVerifyStructuralTampering(t *testing.T) {
	const n = 5
	base := tamperChain(t, n)
	other := randomChain(rand.New(rand.NewPCG(7, 7)), governor.Key{Tenant: "globex", Domain: governor.Billing, Subject: "2026-11"}, n)
	rehashed := func(r Receipt, mutate func(*Receipt)) Receipt {
		mutate(&r)
		r.Hash = r.ComputeHash()
		return r
	}
	type tc struct {
		name    string
		chain   []Receipt
		index   int
		problem Problem
	}
	var tests []tc
	for i := range n {
		want := BadSequence
		if i == n-1 {
			want = ""
		}
		tests = append(tests, tc{fmt.Sprintf("drop %d", i), slices.Delete(slices.Clone(base), i, i+1), i, want})
		tests = append(tests, tc{fmt.Sprintf("duplicate %d", i), slices.Insert(slices.Clone(base), i+1, base[i]), i + 1, BadSequence})
		for j := i + 1; j < n; j++ {
			c := slices.Clone(base)
			c[i], c[j] = c[j], c[i]
			tests = append(tests, tc{fmt.Sprintf("swap %d and %d", i, j), c, i, BadSequence})
		}
		c := slices.Clone(base)
		c[i] = rehashed(c[i], func(r *Receipt) { r.PrevHash = strings.Repeat("e", 64) })
		tests = append(tests, tc{fmt.Sprintf("relinked %d", i), c, i, BrokenLink})
		if i > 0 {
			c := slices.Clone(base)
			c[i] = other[i]
			tests = append(tests, tc{fmt.Sprintf("receipt %d of another instance", i), c, i, WrongInstance})
		}
	}
	tests = append(tests,
		tc{"empty chain", nil, 0, ""},
		tc{"starts at seq 2", base[1:], 0, BadSequence},
		tc{"wrong first prev_hash", append([]Receipt{rehashed(base[0], func(r *Receipt) { r.PrevHash = base[1].Hash })}, base[1:]...), 0, BrokenLink},
		tc{"wrong first prev_hash, not rehashed", append([]Receipt{func() Receipt { r := base[0]; r.PrevHash = base[1].Hash; return r }()}, base[1:]...), 0, HashMismatch},
		tc{"seq 0", []Receipt{rehashed(base[0], func(r *Receipt) { r.Seq = 0 })}, 0, Malformed},
		tc{"seq above 2^53-1", []Receipt{rehashed(base[0], func(r *Receipt) { r.Seq = MaxSeq + 1 })}, 0, Malformed},
		tc{"decided_at with offset", []Receipt{rehashed(base[0], func(r *Receipt) { r.DecidedAt = "2026-11-03T09:15:00+01:00" })}, 0, Malformed},
		tc{"decided_at in seconds", []Receipt{rehashed(base[0], func(r *Receipt) { r.DecidedAt = "2026-11-03T08:15:00Z" })}, 0, ""},
		tc{"uppercase data_digest", []Receipt{rehashed(base[0], func(r *Receipt) { r.DataDigest = strings.ToUpper(r.DataDigest) })}, 0, Malformed},
		tc{"two instances interleaved", []Receipt{base[0], other[0]}, 1, WrongInstance},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkChainError(t, tt.name, Verify(tt.chain), tt.index, tt.problem)
		})
	}
}

// TestVerifyRandomChains is a property test: every chain built by New
// verifies, also after a JSON round trip.
func TestVerifyRandomChains(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 99))
		key := governor.Key{Tenant: fmt.Sprintf("t-%d", seed), Domain: governor.Domains[seed%8], Subject: randomString(rng)}
		chain := randomChain(rng, key, 1+rng.IntN(60))
		if err := Verify(chain); err != nil {
			t.Fatalf("seed %d: Verify(random chain of %d) = %v, want nil", seed, len(chain), err)
		}
		parsed := make([]Receipt, len(chain))
		for i, r := range chain {
			p, err := Parse(r.JSON())
			if err != nil {
				t.Fatalf("seed %d: Parse(%s) = %v", seed, r.JSON(), err)
			}
			parsed[i] = p
		}
		if err := Verify(parsed); err != nil {
			t.Fatalf("seed %d: Verify(parsed chain) = %v, want nil", seed, err)
		}
	}
}

func TestVerifierPages(t *testing.T) {
	chain := randomChain(rand.New(rand.NewPCG(3, 4)), testKey, 25)
	v := NewVerifier()
	if seq, hash := v.Head(); seq != 0 || hash != ZeroHash {
		t.Errorf("NewVerifier().Head() = %d, %s, want 0, ZeroHash", seq, hash)
	}
	for start := 0; start < len(chain); start += 10 {
		page := chain[start:min(start+10, len(chain))]
		for i := range page {
			if err := v.Add(&page[i]); err != nil {
				t.Fatalf("Add(receipt %d) = %v, want nil", start+i, err)
			}
		}
	}
	if seq, hash := v.Head(); seq != 25 || hash != chain[24].Hash || v.Count() != 25 {
		t.Errorf("Head(), Count() = %d, %s, %d, want 25, %s, 25", seq, hash, v.Count(), chain[24].Hash)
	}

	resumed := NewVerifierAfter(chain[9])
	for i := 10; i < len(chain); i++ {
		if err := resumed.Add(&chain[i]); err != nil {
			t.Fatalf("NewVerifierAfter(seq 10).Add(seq %d) = %v, want nil", chain[i].Seq, err)
		}
	}
	if seq, _ := resumed.Head(); seq != 25 || resumed.Count() != 15 {
		t.Errorf("resumed Head(), Count() = %d, %d, want 25, 15", seq, resumed.Count())
	}

	gap := NewVerifierAfter(chain[9])
	checkChainError(t, "resumed at the wrong receipt", gap.Add(&chain[11]), 0, BadSequence)
}

func TestVerifierErrorIsSticky(t *testing.T) {
	chain := tamperChain(t, 3)
	chain[1].Reason = "changed"
	v := NewVerifier()
	var errs []error
	for i := range chain {
		errs = append(errs, v.Add(&chain[i]))
	}
	if errs[0] != nil || errs[1] == nil || errs[2] != errs[1] {
		t.Errorf("Add errors = %v, want nil, then the same error twice", errs)
	}
	if v.Count() != 1 {
		t.Errorf("Count() = %d, want 1", v.Count())
	}
}

func TestChainError(t *testing.T) {
	chain := tamperChain(t, 2)
	chain[1].PrevHash = ZeroHash
	chain[1].Hash = chain[1].ComputeHash()
	err := Verify(chain)
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("Verify(relinked) = %v, want *ChainError", err)
	}
	want := &ChainError{Index: 1, Seq: 2, Problem: BrokenLink, Detail: fmt.Sprintf("prev_hash is %q, want %s", ZeroHash, chain[0].Hash)}
	if !reflect.DeepEqual(ce, want) {
		t.Errorf("Verify(relinked) = %+v, want %+v", ce, want)
	}
	if msg := err.Error(); !strings.Contains(msg, "index 1 (seq 2): broken_link") {
		t.Errorf("Error() = %q, want it to name index, seq and problem", msg)
	}
	if code := fault.ErrorCode(err); code != fault.Conflict {
		t.Errorf("ErrorCode(Verify(relinked)) = %q, want %q", code, fault.Conflict)
	}
	if fault.IsRetryable(err) {
		t.Errorf("IsRetryable(Verify(relinked)) = true, want false")
	}
}
