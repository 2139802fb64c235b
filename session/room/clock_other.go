//go:build !linux

package room

func newClock() clock { return timerClock{} }
