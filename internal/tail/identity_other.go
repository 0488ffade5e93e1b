//go:build !unix

package tail

import "os"

// identitySupported reports whether identityOf works on this platform.
const identitySupported = false

// identityOf reports that file identities are unavailable: tailing needs
// device and inode numbers, which only Unix systems provide.
func identityOf(os.FileInfo) (fileID, bool) { return fileID{}, false }
