// har_preprocess.h — portable causal preprocessing and int8 helpers for har-edge firmware.
//
// Mirrors har_edge.data.preprocessing.CausalPreprocessor (Python) sample by sample (and, at the end,
// the runtime's smoothing of the class probabilities: ActivitySmoother):
//   raw acc (g) [+ gyro (rad/s)]
//     -> optional Butterworth low-pass (noise) on every raw channel  => total_acc, body_gyro
//     -> Butterworth low-pass (gravity, 0.3 Hz) of total_acc          => gravity
//     -> body_acc = total_acc - gravity
// Filters are second-order sections in transposed direct form II, exactly as scipy.signal.sosfilt,
// and each cascade starts at its steady state for the first sample (zi x first sample), as the
// Python side does. Coefficients come from the generated har_model_settings.h.
//
// No Arduino, TFLM, heap or STL dependency; C++11. Define HAR_PREPROCESS_REAL=float before
// including to run the filters in single precision (default double: the 0.3 Hz gravity filter has
// poles very close to the unit circle, and double keeps it within 1e-6 of scipy).
#ifndef HAR_PREPROCESS_H_
#define HAR_PREPROCESS_H_

#include <math.h>
#include <stdint.h>

#ifndef HAR_PREPROCESS_REAL
#define HAR_PREPROCESS_REAL double
#endif

namespace har {

typedef HAR_PREPROCESS_REAL real_t;

// Feature kinds a model channel can be taken from (order fixed by the exporter).
enum FeatureKind { kBodyAcc = 0, kBodyGyro = 1, kTotalAcc = 2, kGravity = 3 };

constexpr int kMaxSections = 8;  // order <= 16
constexpr int kMaxRawChannels = 6;

// A cascade of second-order sections applied to up to kMaxRawChannels channels in parallel.
class SosFilterBank {
 public:
  SosFilterBank() : n_sections_(0), n_channels_(0), primed_(false) {}

  // sos: n_sections rows of {b0, b1, b2, a0, a1, a2}; zi: scipy.signal.sosfilt_zi(sos).
  // n_sections == 0 makes an identity filter. Returns false on bad sizes or a0 == 0.
  bool Configure(const double (*sos)[6], const double (*zi)[2], int n_sections, int n_channels) {
    if (n_sections < 0 || n_sections > kMaxSections || n_channels < 1 || n_channels > kMaxRawChannels) {
      return false;
    }
    for (int s = 0; s < n_sections; ++s) {
      const double a0 = sos[s][3];
      if (a0 == 0.0) return false;
      for (int k = 0; k < 6; ++k) c_[s][k] = static_cast<real_t>(sos[s][k] / a0);
      zi_[s][0] = static_cast<real_t>(zi[s][0]);
      zi_[s][1] = static_cast<real_t>(zi[s][1]);
    }
    n_sections_ = n_sections;
    n_channels_ = n_channels;
    Reset();
    return true;
  }

  // Forget the state: the next frame re-initialises it to the steady state of that frame.
  void Reset() { primed_ = false; }

  // One frame: x[n_channels] in, y[n_channels] out (x and y may alias).
  void Process(const real_t* x, real_t* y) {
    if (!primed_) {
      for (int ch = 0; ch < n_channels_; ++ch) {
        for (int s = 0; s < n_sections_; ++s) {
          z_[ch][s][0] = zi_[s][0] * x[ch];
          z_[ch][s][1] = zi_[s][1] * x[ch];
        }
      }
      primed_ = true;
    }
    for (int ch = 0; ch < n_channels_; ++ch) {
      real_t v = x[ch];
      for (int s = 0; s < n_sections_; ++s) {
        const real_t* c = c_[s];
        real_t* z = z_[ch][s];
        const real_t out = c[0] * v + z[0];
        z[0] = c[1] * v - c[4] * out + z[1];
        z[1] = c[2] * v - c[5] * out;
        v = out;
      }
      y[ch] = v;
    }
  }

  int sections() const { return n_sections_; }
  int channels() const { return n_channels_; }

 private:
  real_t c_[kMaxSections][6];
  real_t zi_[kMaxSections][2];
  real_t z_[kMaxRawChannels][kMaxSections][2];
  int n_sections_;
  int n_channels_;
  bool primed_;
};

struct PreprocessConfig {
  int num_raw;                     // 3 (acc xyz) or 6 (acc xyz, gyro xyz)
  const double (*noise_sos)[6];    // kHarNoiseSos
  const double (*noise_zi)[2];     // kHarNoiseZi
  int noise_sections;              // kHarNoiseSections (0: no noise filter)
  const double (*gravity_sos)[6];  // kHarGravitySos
  const double (*gravity_zi)[2];   // kHarGravityZi
  int gravity_sections;            // kHarGravitySections
  const int (*channel_source)[2];  // kHarChannelSource: {FeatureKind, axis} per model channel
  int num_channels;                // kHarNumChannels
};

// Streaming feature extractor: one raw frame in, one model-channel frame out, state carried.
class CausalPreprocessor {
 public:
  CausalPreprocessor() : num_raw_(0), num_channels_(0), source_(nullptr) {}

  bool Init(const PreprocessConfig& cfg) {
    if (cfg.num_raw != 3 && cfg.num_raw != 6) return false;
    if (cfg.num_channels < 1 || cfg.channel_source == nullptr) return false;
    for (int c = 0; c < cfg.num_channels; ++c) {
      const int kind = cfg.channel_source[c][0];
      const int axis = cfg.channel_source[c][1];
      if (kind < kBodyAcc || kind > kGravity || axis < 0 || axis > 2) return false;
      if (kind == kBodyGyro && cfg.num_raw != 6) return false;
    }
    if (!noise_.Configure(cfg.noise_sos, cfg.noise_zi, cfg.noise_sections, cfg.num_raw)) return false;
    if (!gravity_.Configure(cfg.gravity_sos, cfg.gravity_zi, cfg.gravity_sections, 3)) return false;
    num_raw_ = cfg.num_raw;
    num_channels_ = cfg.num_channels;
    source_ = cfg.channel_source;
    return true;
  }

  // Start of a new stream (e.g. after a sensor gap).
  void Reset() {
    noise_.Reset();
    gravity_.Reset();
  }

  // raw[num_raw]: acc x,y,z (g) [, gyro x,y,z (rad/s)] -> features[num_channels] (model order).
  void Process(const float* raw, float* features) {
    real_t x[kMaxRawChannels];
    for (int i = 0; i < num_raw_; ++i) x[i] = static_cast<real_t>(raw[i]);
    noise_.Process(x, x);  // x[0..2] = total_acc, x[3..5] = body_gyro
    real_t gravity[3];
    gravity_.Process(x, gravity);
    for (int c = 0; c < num_channels_; ++c) {
      const int axis = source_[c][1];
      real_t v = 0;
      switch (source_[c][0]) {
        case kBodyAcc: v = x[axis] - gravity[axis]; break;
        case kBodyGyro: v = x[3 + axis]; break;
        case kTotalAcc: v = x[axis]; break;
        case kGravity: v = gravity[axis]; break;
        default: break;
      }
      features[c] = static_cast<float>(v);
    }
  }

 private:
  SosFilterBank noise_;
  SosFilterBank gravity_;
  int num_raw_;
  int num_channels_;
  const int (*source_)[2];
};

// ---- int8 helpers

// round-half-to-even like numpy.round, then clamp to int8.
inline int8_t QuantiseInt8(float x, float scale, int zero_point) {
  float q = nearbyintf(x / scale) + static_cast<float>(zero_point);
  if (q < -128.0f) q = -128.0f;
  if (q > 127.0f) q = 127.0f;
  return static_cast<int8_t>(q);
}

inline float DequantiseInt8(int8_t q, float scale, int zero_point) {
  return static_cast<float>(static_cast<int>(q) - zero_point) * scale;
}

inline int ArgMaxInt8(const int8_t* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = i;
  }
  return best;
}

// Ring of the last `frames` feature frames (frames x channels floats, caller-owned storage).
class FeatureRing {
 public:
  FeatureRing(float* storage, int frames, int channels)
      : buf_(storage), frames_(frames), channels_(channels), next_(0), count_(0) {}

  void Push(const float* frame) {
    float* dst = buf_ + next_ * channels_;
    for (int c = 0; c < channels_; ++c) dst[c] = frame[c];
    next_ = (next_ + 1) % frames_;
    if (count_ < frames_) ++count_;
  }

  bool full() const { return count_ == frames_; }
  int count() const { return count_; }
  void Clear() { next_ = 0; count_ = 0; }

  // The window oldest -> newest, normalised per channel and quantised: out[frames][channels].
  void NormaliseQuantise(const float* mean, const float* std_dev, float scale, int zero_point,
                         int8_t* out) const {
    const int start = full() ? next_ : 0;
    for (int t = 0; t < count_; ++t) {
      const float* src = buf_ + ((start + t) % frames_) * channels_;
      for (int c = 0; c < channels_; ++c) {
        const float x = (src[c] - mean[c]) / std_dev[c];
        out[t * channels_ + c] = QuantiseInt8(x, scale, zero_point);
      }
    }
  }

 private:
  float* buf_;
  int frames_;
  int channels_;
  int next_;
  int count_;
};

// ---- smoothing of the class probabilities: mirrors har_edge.runtime.smoothing.Smoother (none, mean, vote)
// and har_edge.runtime.decoding.HmmSmoother (hmm), then shows classes flagged in show_as_uncertain as
// "uncertain" (-1), as the Python device runtime does with the bundle's smoothing.

enum SmoothingMethod { kSmoothNone = 0, kSmoothMean = 1, kSmoothVote = 2, kSmoothHmm = 3 };

constexpr int kMaxClasses = 16;
constexpr int kMaxSmoothingWindow = 16;
constexpr int kMaxHmmStates = 32;

struct SmoothingConfig {
  int method;                      // kHarSmoothingMethod
  int num_classes;                 // kHarNumClasses
  int window;                      // kHarSmoothingWindow (mean / vote)
  int votes;                       // kHarSmoothingVotes (vote)
  float confidence_floor;          // kHarConfidenceFloor: below it, "uncertain"
  float evidence_weight;           // kHarEvidenceWeight (hmm)
  int num_states;                  // kHarSmoothingStates (hmm)
  const int* state_class;          // kHarStateClass: the class each hidden state shows (hmm)
  const double* initial;           // kHarInitialBelief (hmm)
  const double* transitions;       // &kHarTransitions[0][0]: row-major [from state][to state] (hmm)
  const bool* show_as_uncertain;   // kHarShowAsUncertain
  double evidence_floor;           // kHarEvidenceFloor (hmm): the least evidence a class gets (> 0)
};

class ActivitySmoother {
 public:
  ActivitySmoother() : count_(0), next_(0), has_belief_(false) {}

  bool Init(const SmoothingConfig& cfg) {
    if (cfg.num_classes < 1 || cfg.num_classes > kMaxClasses || cfg.method < kSmoothNone || cfg.method > kSmoothHmm) return false;
    if ((cfg.method == kSmoothMean || cfg.method == kSmoothVote) &&
        (cfg.window < 1 || cfg.window > kMaxSmoothingWindow || cfg.votes < 1 || cfg.votes > cfg.window)) {
      return false;
    }
    if (cfg.method == kSmoothHmm) {
      if (cfg.num_states < 1 || cfg.num_states > kMaxHmmStates || cfg.transitions == nullptr || cfg.initial == nullptr ||
          cfg.state_class == nullptr || !(cfg.evidence_floor > 0.0 && cfg.evidence_floor < 1.0)) {
        return false;
      }
      for (int i = 0; i < cfg.num_states; ++i) {
        if (cfg.state_class[i] < 0 || cfg.state_class[i] >= cfg.num_classes) return false;
      }
    }
    cfg_ = cfg;
    Reset();
    return true;
  }

  // A new stream: forget the history / belief.
  void Reset() {
    count_ = 0;
    next_ = 0;
    has_belief_ = false;
  }

  // probabilities[num_classes] (dequantised model outputs) -> the class to show, or -1 for "uncertain".
  int Update(const float* p, float* confidence) {
    const int k = cfg_.num_classes;
    float smoothed[kMaxClasses];
    int best = 0;
    if (cfg_.method == kSmoothHmm) {
      best = UpdateBelief(p, smoothed);
    } else {
      const int w = cfg_.method == kSmoothNone ? 1 : cfg_.window;
      for (int c = 0; c < k; ++c) history_[next_][c] = p[c];
      next_ = (next_ + 1) % w;
      if (count_ < w) ++count_;
      for (int c = 0; c < k; ++c) {
        float sum = 0.0f;
        for (int h = 0; h < count_; ++h) sum += history_[h][c];
        smoothed[c] = sum / static_cast<float>(count_);
      }
      best = ArgMax(smoothed, k);
      if (cfg_.method == kSmoothVote) {
        int votes[kMaxClasses] = {0};
        for (int h = 0; h < count_; ++h) ++votes[ArgMax(history_[h], k)];
        int top = 0;
        for (int c = 1; c < k; ++c) {
          if (votes[c] > votes[top]) top = c;
        }
        *confidence = smoothed[best];
        const int needed = cfg_.votes < count_ ? cfg_.votes : count_;
        if (votes[top] < needed) return -1;
        best = top;
      }
    }
    *confidence = smoothed[best];
    if (smoothed[best] < cfg_.confidence_floor) return -1;
    if (cfg_.show_as_uncertain != nullptr && cfg_.show_as_uncertain[best]) return -1;
    return best;
  }

 private:
  static int ArgMax(const float* v, int n) {
    int best = 0;
    for (int i = 1; i < n; ++i) {
      if (v[i] > v[best]) best = i;
    }
    return best;
  }

  // Online HMM forward filter over hidden states: b_t(s) ~ max(p[class(s)], floor)^w * (A^T b_{t-1})(s),
  // started from the initial belief; the class belief is the sum over the states showing it.
  int UpdateBelief(const float* p, float* smoothed) {
    const int k = cfg_.num_classes;
    const int n = cfg_.num_states;
    double evidence[kMaxClasses];
    for (int c = 0; c < k; ++c) {
      const double floor = cfg_.evidence_floor;
      evidence[c] = pow(static_cast<double>(p[c]) > floor ? static_cast<double>(p[c]) : floor, static_cast<double>(cfg_.evidence_weight));
    }
    double next[kMaxHmmStates];
    double total = 0.0;
    for (int j = 0; j < n; ++j) {
      double prior = cfg_.initial[j];
      if (has_belief_) {
        prior = 0.0;
        for (int i = 0; i < n; ++i) prior += belief_[i] * cfg_.transitions[i * n + j];
      }
      next[j] = prior * evidence[cfg_.state_class[j]];
      total += next[j];
    }
    double per_class[kMaxClasses] = {0.0};
    for (int j = 0; j < n; ++j) {
      belief_[j] = next[j] / total;
      per_class[cfg_.state_class[j]] += belief_[j];
    }
    int best = 0;
    for (int c = 0; c < k; ++c) {
      smoothed[c] = static_cast<float>(per_class[c]);
      if (per_class[c] > per_class[best]) best = c;
    }
    has_belief_ = true;
    return best;
  }

  SmoothingConfig cfg_;
  float history_[kMaxSmoothingWindow][kMaxClasses];
  double belief_[kMaxHmmStates];
  int count_;
  int next_;
  bool has_belief_;
};

}  // namespace har

#endif  // HAR_PREPROCESS_H_
