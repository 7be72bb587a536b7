package sandbox

import "golang.org/x/sys/unix"

// capByName lists the capabilities a profile may keep.
var capByName = map[string]int{
	"CAP_CHOWN":            unix.CAP_CHOWN,
	"CAP_DAC_OVERRIDE":     unix.CAP_DAC_OVERRIDE,
	"CAP_FOWNER":           unix.CAP_FOWNER,
	"CAP_KILL":             unix.CAP_KILL,
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_RAW":          unix.CAP_NET_RAW,
	"CAP_NET_ADMIN":        unix.CAP_NET_ADMIN,
	"CAP_SYS_NICE":         unix.CAP_SYS_NICE,
	"CAP_SYS_TIME":         unix.CAP_SYS_TIME,
	"CAP_IPC_LOCK":         unix.CAP_IPC_LOCK,
}
