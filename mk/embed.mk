# embed: ONNX inference engine for image CNNs (oneDNN kernels) and, in front of it, the image
# pipeline. See src/embed/embed.h.
MODULES += embed
embed_DEPS :=
embed_PKGS :=
embed_LDLIBS := -ldnnl -lgomp
embed_CFLAGS :=
DEB_PKGS += libdnnl-dev libonnx-testdata python3-onnx python3-numpy

# ONNX backend node tests (Debian libonnx-testdata), run by tests/integration/onnx_conformance.sh.
IT_MODULES_onnx_conformance := embed

FUZZERS += onnx_load
fuzz_onnx_load_MODULES := embed
