/*
 * fuzz_khproto - the cables-keyholder frame codec (lib/khproto.c): the
 * first byte says request or reply, the rest (zero-filled or cut to the
 * frame's size) is one frame.  A frame that decodes must be canonical:
 * encoding what was decoded gives back the very same bytes (the decoders
 * are strict, so no two frames mean the same thing), and its lengths are
 * within the limits.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "khproto.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t in[KH_REQUEST_SIZE], out[KH_REQUEST_SIZE];
	struct kh_request req;
	struct kh_reply rep;

	if (size == 0)
		return 0;
	memset(in, 0, sizeof(in));
	memcpy(in, data + 1, size - 1 < sizeof(in) ? size - 1 : sizeof(in));
	if (data[0] & 1) {
		if (kh_reply_decode(&rep, in, NULL) != CABLES_OK)
			return 0;
		if (rep.len > KH_DATA_MAX || rep.status >= KH_STATUS_MAX ||
		    kh_reply_encode(out, &rep, NULL) != CABLES_OK || memcmp(in, out, KH_REPLY_SIZE) != 0)
			abort();
		return 0;
	}
	if (kh_request_decode(&req, in, NULL) != CABLES_OK)
		return 0;
	if (req.len == 0 || req.len > KH_DATA_MAX || strlen(req.address) >= KH_ADDR_MAX ||
	    strlen(req.fingerprint) != KH_FPR_LEN || strchr(req.address, '@') == NULL ||
	    kh_request_encode(out, &req, NULL) != CABLES_OK || memcmp(in, out, KH_REQUEST_SIZE) != 0)
		abort();
	return 0;
}
