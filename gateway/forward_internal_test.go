package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The secondary's header is the primary's with the marker set, and owns its
// values: a change to either copy never shows in the other.
func TestCloneWithSetsTheMarkerOnAClone(t *testing.T) {
	for _, keys := range []int{0, 1, 7, 8, 9, 20} {
		t.Run(fmt.Sprint(keys, " keys"), func(t *testing.T) {
			header := http.Header{}
			for i := range keys {
				header[fmt.Sprintf("X-K%d", i)] = []string{fmt.Sprint("a", i), fmt.Sprint("b", i)}
			}
			if keys > 0 {
				header["User-Agent"] = nil
				header["X-Cutover-Shadow"] = []string{"client's", "own"}
			}
			want := header.Clone()
			want.Set("X-Cutover-Shadow", "1")
			got := cloneWith(header, "X-Cutover-Shadow", "1")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("cloneWith (-Clone and Set, +got):\n%s", diff)
			}
			if keys > 0 {
				if v, ok := got["User-Agent"]; !ok || v != nil {
					t.Errorf("User-Agent = %#v, %v; want a nil value kept", v, ok)
				}
			}
			// Appending to one value must not overwrite the next one in
			// the shared array, nor reach the original.
			for k := range got {
				got[k] = append(got[k], "appended")
			}
			for k, vv := range got {
				if n := len(vv); vv[n-1] != "appended" || !slices.Equal(vv[:n-1], want[k]) {
					t.Errorf("%s = %q after appending to every value, want %q and the append", k, vv, want[k])
				}
			}
			if diff := cmp.Diff(want, cloneWith(header, "X-Cutover-Shadow", "1")); diff != "" {
				t.Errorf("the original changed through its clone:\n%s", diff)
			}
		})
	}
}
