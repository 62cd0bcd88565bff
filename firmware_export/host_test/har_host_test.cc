// har_host_test.cc — runs the firmware's input pipeline on the host, without TFLM or a board.
//
// Reads raw IMU frames from stdin (whitespace-separated, one frame per line: acc x y z in g
// [, gyro x y z in rad/s]), runs the same code path as the sketch (causal preprocessing or raw
// channel map -> feature ring -> normalise + quantise every hop) and prints
//   F <feature_0> ... <feature_{C-1}>            for every frame
//   W <q_0> ... <q_{T*C-1}>                      for every window (every kHarHopSamples once full)
// The pytest suite compares this with har_edge.data.preprocessing.CausalPreprocessor.
//
// `har_host_test smooth` instead reads one probability vector per line (kHarNumClasses floats) and
// prints `S <class or -1 for uncertain> <confidence>` per line: har::ActivitySmoother with the
// settings' smoothing, compared with the runtime's smoother (har_edge.runtime.decoding.make_smoother).
//
// Build (from a folder holding the generated headers and har_preprocess.h):
//   g++ -std=c++17 -O2 -I. -o har_host_test path/to/har_host_test.cc
#include <cstdio>
#include <cstring>

#include "har_model_settings.h"
#include "har_preprocess.h"

namespace {

constexpr int kRawPerFrame =
#if HAR_HAS_PREPROCESSING
    kHarNumRawInputs;
#else
    6;
#endif

float g_ring_storage[kHarWindowSamples * kHarNumChannels];
int8_t g_window[kHarWindowSamples * kHarNumChannels];

}  // namespace

int Smooth() {
  const har::SmoothingConfig cfg = {kHarSmoothingMethod, kHarNumClasses,     kHarSmoothingWindow, kHarSmoothingVotes,
                                    kHarConfidenceFloor, kHarEvidenceWeight, kHarSmoothingStates, kHarStateClass,
                                    kHarInitialBelief,   &kHarTransitions[0][0], kHarShowAsUncertain, kHarEvidenceFloor};
  har::ActivitySmoother smoother;
  if (!smoother.Init(cfg)) {
    std::fprintf(stderr, "smoothing configuration rejected\n");
    return 2;
  }
  float p[kHarNumClasses];
  for (;;) {
    for (int i = 0; i < kHarNumClasses; ++i) {
      if (std::scanf("%f", &p[i]) != 1) return i == 0 ? 0 : 3;
    }
    float confidence = 0.0f;
    const int shown = smoother.Update(p, &confidence);
    std::printf("S %d %.9g\n", shown, confidence);
  }
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "smooth") == 0) return Smooth();
#if HAR_HAS_PREPROCESSING
  har::PreprocessConfig cfg = {kHarNumRawInputs, kHarNoiseSos,   kHarNoiseZi,       kHarNoiseSections,
                               kHarGravitySos,   kHarGravityZi,  kHarGravitySections, kHarChannelSource,
                               kHarNumChannels};
  har::CausalPreprocessor pre;
  if (!pre.Init(cfg)) {
    std::fprintf(stderr, "preprocessor configuration rejected\n");
    return 2;
  }
#elif !HAR_HAS_RAW_CHANNEL_MAP
  std::fprintf(stderr, "model channels are neither preprocessed nor raw IMU channels\n");
  return 2;
#endif
  har::FeatureRing ring(g_ring_storage, kHarWindowSamples, kHarNumChannels);
  float raw[6] = {0, 0, 0, 0, 0, 0};
  float features[kHarNumChannels];
  long n = 0;
  int since_last = 0;
  if (kHarCarryState) {  // a streaming model: the stream starts with its context at the normalisation mean
    for (int i = 0; i < kHarWindowSamples - kHarHopSamples; ++i) ring.Push(kHarChannelMean);
    n = kHarWindowSamples - kHarHopSamples;
  }
  for (;;) {
    int got = 0;
    for (int i = 0; i < kRawPerFrame; ++i) {
      if (std::scanf("%f", &raw[i]) != 1) break;
      ++got;
    }
    if (got == 0) break;
    if (got != kRawPerFrame) {
      std::fprintf(stderr, "frame %ld: expected %d values, got %d\n", n, kRawPerFrame, got);
      return 3;
    }
#if HAR_HAS_PREPROCESSING
    for (int i = 0; i < kHarNumRawInputs; ++i) raw[i] *= kHarRawInputScale[i];
    pre.Process(raw, features);
#elif HAR_HAS_RAW_CHANNEL_MAP
    for (int c = 0; c < kHarNumChannels; ++c) features[c] = raw[kHarChannelRawIndex[c]] * kHarChannelRawScale[c];
#endif
    ring.Push(features);
    ++n;
    std::printf("F");
    for (int c = 0; c < kHarNumChannels; ++c) std::printf(" %.9g", features[c]);
    std::printf("\n");
    if (!ring.full()) continue;
    if (++since_last < kHarHopSamples && n > kHarWindowSamples) continue;
    since_last = 0;
    ring.NormaliseQuantise(kHarChannelMean, kHarChannelStd, kHarInputScale, kHarInputZeroPoint, g_window);
    std::printf("W");
    for (int i = 0; i < kHarWindowSamples * kHarNumChannels; ++i) std::printf(" %d", g_window[i]);
    std::printf("\n");
  }
  return 0;
}
