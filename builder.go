package keyvalue

import (
	"errors"
	"unsafe"

	"github.com/valkey-io/valkey-go"
)

// errBuilderLayout means valkey-go changed valkey.Builder's layout: this
// file must be updated together with the valkey-go upgrade.
var errBuilderLayout = errors.New("keyvalue: valkey.Builder's layout changed in this valkey-go version; keyvalue must be updated for it")

// builderFor returns the command builder valkey-go uses for the mode, so
// that B() works before the first dial. valkey.Builder has no public
// constructor: its only field is the slot mode, the same internal constants
// valkey-go's own clients use. This is the one use of unsafe in keyvalue;
// TestBuilderMatchesValkeyGo compares the result with real clients' builders
// and fails loudly when a valkey-go upgrade changes the layout.
func builderFor(m Mode) (valkey.Builder, error) {
	const (
		initSlot = uint16(1 << 14) // cluster: compute slots, reject cross-slot commands
		noSlot   = uint16(1 << 15) // standalone and sentinel: no slot checks
	)
	var b valkey.Builder
	if unsafe.Sizeof(b) != unsafe.Sizeof(uint16(0)) {
		return b, errBuilderLayout
	}
	ks := noSlot
	if m == ModeCluster {
		ks = initSlot
	}
	*(*uint16)(unsafe.Pointer(&b)) = ks
	return b, nil
}
