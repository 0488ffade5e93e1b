//go:build unix

package tail

import (
	"os"
	"syscall"
)

// identitySupported reports whether identityOf works on this platform.
const identitySupported = true

// identityOf returns the device and inode of the file fi describes.
func identityOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, true //nolint:unconvert // Dev's type varies by platform
}
