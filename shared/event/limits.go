package event

// Size limits. They bound the work done on hostile input and keep every
// accepted event well inside the Pub/Sub and Firestore limits.
const (
	// MaxPushBytes bounds a push body or messagePublished data: a full
	// message in base64 plus its attributes and envelope.
	MaxPushBytes = 512 << 10
	// MaxMessageBytes bounds a Pub/Sub message: its data plus the names and
	// values of its attributes.
	MaxMessageBytes = 256 << 10
	// MaxDataBytes bounds the event's data.
	MaxDataBytes = 64 << 10
	// MaxAttributes bounds the number of Pub/Sub attributes and of members
	// of a structured event (the Pub/Sub limit).
	MaxAttributes = 100
	// MaxAttributeNameBytes and MaxAttributeValueBytes bound one attribute
	// (the Pub/Sub limits); a structured event's extension values obey the
	// value limit as well.
	MaxAttributeNameBytes  = 256
	MaxAttributeValueBytes = 1024
	// MaxTextBytes bounds id, source, type, correlationid and causationid.
	MaxTextBytes = 256
	// MaxIDLen bounds tenant ids and subjects, in characters (all ASCII).
	MaxIDLen = 128
	// CascadeDepthLimit is the largest cascadedepth that decodes. Depths
	// from governor.MaxCascadeDepth up to this limit decode and are then
	// rejected by the governor with a receipt; larger ones are malformed.
	CascadeDepthLimit = 64
)
