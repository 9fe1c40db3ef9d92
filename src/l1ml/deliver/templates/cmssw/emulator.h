// The hls4mlEmulator interface that CMSSW loads L1 ML emulators through (the hls4mlEmulatorExtras external declares
// the same class in include/hls4ml/emulator.h). Used only when EMULATOR_EXTRAS is not given: a standalone build.
#ifndef L1ML_HLS4ML_EMULATOR_H_
#define L1ML_HLS4ML_EMULATOR_H_

#include <any>

namespace hls4mlEmulator {

class Model {
public:
    virtual void prepare_input(std::any input) = 0;
    virtual void predict() = 0;
    virtual void read_result(std::any result) = 0;
    virtual ~Model() = default;
};

typedef Model* create_model_cls();
typedef void destroy_model_cls(Model*);

}  // namespace hls4mlEmulator

#endif
