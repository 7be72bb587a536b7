//go:build !unix

package slot

const noFollow = 0
