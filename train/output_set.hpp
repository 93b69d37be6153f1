// The files of one train run, published as a set.
//
// A run writes its outputs (kOutputNames) into a fresh staging folder inside the output folder,
// under their final names, beside a MANIFEST naming the ones it made. Publishing fsyncs them, then
// renames the staging folder to ".train-publish" (the commit point: one rename), moves each file over
// its final name, and removes an output the run did not make (loss.png when gnuplot is missing), so
// that the folder never shows two runs' files side by side. A run killed before the commit point
// leaves the previous set untouched; one killed after it is finished by the next run's start, which
// also removes what earlier runs left staged. One run at a time per output folder.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace ped::train {

inline constexpr std::array<const char*, 5> kOutputNames = {"loss.csv", "checkpoint.bin", "loss.gp", "loss.png",
                                                           "sample.txt"};

class OutputSet {
 public:
  // Creates `dir` if needed and recovers it (see above). Throws std::runtime_error naming the path
  // when it cannot.
  explicit OutputSet(const std::filesystem::path& dir);
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;
  ~OutputSet();  // removes the staging folder unless published

  // Lines saying what the constructor finished or removed ("" when the folder was clean).
  const std::vector<std::string>& recovered() const { return recovered_; }
  // Where the run writes its outputs, under their final names: a folder made on the first call, so
  // that nothing is staged while the run trains.
  const std::filesystem::path& staging();
  // Publishes every output name in the staging folder as the folder's set.
  void publish();

 private:
  std::filesystem::path dir_, staging_;
  std::vector<std::string> recovered_;
  bool published_ = false;
};

// For the tests in train/CMakeLists.txt only: when PED_TRAIN_KILL_AT equals `stage`, the process
// sends itself SIGKILL there, as a crash or a `kill -9` would (no destructor, no cleanup).
void kill_point(const char* stage);

}  // namespace ped::train
