package dht

import (
	"crypto/sha256"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

// InfohashPrefix is hashed in front of the topic so that a dwebswarm
// infohash can never equal a torrent's (a torrent infohash is the SHA-1 of a
// bencoded info dictionary, which never starts with this prefix).
const InfohashPrefix = "dwebswarm:topic:"

// Infohash returns the DHT key of a topic: the first 20 bytes of
// SHA-256("dwebswarm:topic:" ‖ topic). The raw topic never leaves the host.
func Infohash(topic framework.Topic) [20]byte {
	h := sha256.New()
	h.Write([]byte(InfohashPrefix))
	h.Write(topic[:])
	var sum [sha256.Size]byte
	var ih [20]byte
	copy(ih[:], h.Sum(sum[:0]))
	return ih
}
