package kit

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// RandomCode is n random decimal digits, the first not 0.
func RandomCode(n int) (string, error) {
	var b strings.Builder
	for i := 0; i < n; i++ {
		lo := 0
		if i == 0 {
			lo = 1
		}
		d, err := rand.Int(rand.Reader, big.NewInt(int64(10-lo)))
		if err != nil {
			return "", err
		}
		b.WriteByte(byte('0' + lo + int(d.Int64())))
	}
	return b.String(), nil
}
