# embed: ONNX image CNN engine and the libvips image pipeline.
MODULES += embed
embed_DEPS :=
# Image pipeline (src/embed/image*.c).
embed_PKGS += vips
DEB_PKGS += libvips-dev
FUZZERS += image_decode
fuzz_image_decode_MODULES := embed
# tests/integration/embed_pipeline.sh compares the pipeline with PIL (bench/embed/pil_pipeline.py).
IT_MODULES_embed_pipeline := embed
DEB_PKGS += python3-pil python3-numpy
