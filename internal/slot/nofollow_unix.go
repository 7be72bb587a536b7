//go:build unix

package slot

import "syscall"

const noFollow = syscall.O_NOFOLLOW
