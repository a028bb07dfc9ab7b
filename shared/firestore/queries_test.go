package firestore

import (
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/store"
)

// comparePaths orders marker paths as store.CompareMarkers orders their
// ids, which a plain comparison of the paths does not.
func TestComparePathsAgreesWithCompareMarkers(t *testing.T) {
	hashes := []string{strings.Repeat("1", 64), strings.Repeat("2", 64)}
	tenants := []string{"t", "t-a", "t.b", "t0", "t a", "u"}
	var ids []string
	for _, tenant := range tenants {
		for _, h := range hashes {
			ids = append(ids, tenant+"/"+h)
		}
	}
	path := func(id string) string {
		tenant, hash, _ := strings.Cut(id, "/")
		return colTenants + "/" + tenant + "/" + colDedup + "/" + hash
	}
	for _, a := range ids {
		for _, b := range ids {
			if got, want := comparePaths(path(a), path(b)), store.CompareMarkers(a, b); got != want {
				t.Errorf("comparePaths(%s, %s) = %d, want %d", path(a), path(b), got, want)
			}
		}
	}
	if comparePaths("a/b", "a/b/c") >= 0 || comparePaths("a/b/c", "a/b") <= 0 {
		t.Error("comparePaths: a path must sort before its extensions")
	}
}
