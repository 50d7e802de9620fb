# embed: ONNX inference engine for image CNNs (oneDNN kernels) and the libvips image pipeline
# in front of it. See src/embed/embed.h.
MODULES += embed
embed_DEPS :=
embed_LDLIBS := -ldnnl -lgomp
DEB_PKGS += libdnnl-dev libonnx-testdata python3-onnx python3-numpy

# ONNX backend node tests (Debian libonnx-testdata), run by tests/integration/onnx_conformance.sh.
IT_MODULES_onnx_conformance := embed

FUZZERS += onnx_load
fuzz_onnx_load_MODULES := embed

# Image pipeline (src/embed/image*.c): libvips, and libjpeg-turbo for the direct JPEG path.
embed_PKGS += vips
embed_LDLIBS += -ljpeg
# The direct JPEG path's resampler loops are vectorised at -O3 (GCC's -O2 cost model leaves
# loops of a run-time length scalar).
$(BUILD)/obj/embed/image_jpeg.o: EXTRA_CFLAGS += -O3
DEB_PKGS += libvips-dev libjpeg-dev
FUZZERS += image_decode
fuzz_image_decode_MODULES := embed
# tests/integration/embed_pipeline.sh compares the pipeline with PIL (bench/embed/pil_pipeline.py).
IT_MODULES_embed_pipeline := embed
DEB_PKGS += python3-pil python3-numpy

# embed-prof: time and profile one model on the engine (EMBED_PROFILE=1 for per-op times).
PROGRAMS += embed-prof
prog_embed-prof_SRCS := tools/embed/embed_prof.c
prog_embed-prof_MODULES := embed

# tests/integration/embed_ort.sh: the engine against ONNX Runtime (tools/ort, npm
# onnxruntime-node installed by scripts/ort-install.sh, which also installs Node when it is
# missing) on product photos; embed_ort.c is our side.
IT_MODULES_embed_ort := embed

# bench/embed: the engine against ONNX Runtime (latency at batch 1, throughput at 8 and 16, 1
# and 2 threads) on the shared MobileNet and random-weight ResNet-18/50, and the image pipeline
# against PIL. EMBED_BENCH_ARGS=--quick shortens it.
BENCHES += embed
bench_embed_SRCS := bench/embed/embed.c
bench_embed_MODULES := embed
bench_embed_RUN = scripts/ort-install.sh && scripts/resnet-models.sh $(BUILD)/models >/dev/null && \
	$(BUILD)/bench/embed --data $(DATA_DIR) \
	--models $(MODELS_DIR)/mobilenet_v1_0.75_224.onnx,$(BUILD)/models/resnet18.onnx,$(BUILD)/models/resnet50.onnx \
	$(EMBED_BENCH_ARGS)
