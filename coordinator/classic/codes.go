package classic

// Kafka error codes this package answers with. They are plain constants so that they
// can be switched on; TestCodesMatchKerr holds them to franz-go's kerr table.
const (
	codeNone                      int16 = 0
	codeCoordinatorNotAvailable   int16 = 15
	codeIllegalGeneration         int16 = 22
	codeInconsistentGroupProtocol int16 = 23
	codeUnknownMemberID           int16 = 25
	codeInvalidSessionTimeout     int16 = 26
	codeRebalanceInProgress       int16 = 27
	codeNonEmptyGroup             int16 = 68
	codeGroupIDNotFound           int16 = 69
	codeMemberIDRequired          int16 = 79
	codeGroupMaxSizeReached       int16 = 81
	codeFencedInstanceID          int16 = 82
)
