package dissect

// RecordTypeHandshake is the first byte of every TLS stream a client
// starts.
const RecordTypeHandshake = recordTypeHandshake
