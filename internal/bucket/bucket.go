// Package bucket maps a traffic unit (a user, a session) to a sticky
// percentile, so experiment arms and model canaries split traffic the same way
// on every replica without shared state.
package bucket

import "hash/fnv"

// Percent maps key under salt to [0, 100): a 64-bit FNV-1a hash of salt and
// key, mixed by the SplitMix64 finaliser (FNV's high bits alone are skewed
// for similar short keys). It depends on nothing but its inputs, so every
// replica agrees; a different salt gives an independent split.
func Percent(salt, key string) float64 {
	h := fnv.New64a()
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(key))
	v := h.Sum64()
	v ^= v >> 30
	v *= 0xbf58476d1ce4e5b9
	v ^= v >> 27
	v *= 0x94d049bb133111eb
	v ^= v >> 31
	return float64(v>>11) / float64(1<<53) * 100
}
