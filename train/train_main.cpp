// train: a character-level tiny GPT trained with the hand-derived backward of reference/ and AdamW,
// no LibTorch. Reads a text (by default the GPL-3 licence every Debian machine has), holds out its
// last 10% for validation, prints progress, and writes the loss curve (CSV and a gnuplot PNG), a
// checkpoint and a seeded sample of generated text as one set (train/output_set.hpp).
//
// Exit codes: 0 done, 1 a runtime failure (I/O, a diverged run), 2 a usage error (bad option or value,
// empty text), checked before anything is written.

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/cli_checks.hpp"
#include "reference/adamw.hpp"
#include "reference/checkpoint.hpp"
#include "reference/gpt.hpp"
#include "core/atomic_file.hpp"
#include "core/process.hpp"
#include "core/schemas.hpp"
#include "train/output_set.hpp"

extern "C" void openblas_set_num_threads(int);

namespace {

using ped::ref::TokenIds;
using Model = ped::ref::Gpt<float>;
namespace fs = std::filesystem;
using ped::write_file_atomically;

struct Options {
  std::string text = "/usr/share/common-licenses/GPL-3";
  std::string out = "train_out";
  int steps = 1200;  // the validation loss levels off near here on GPL-3 (31k training characters)
  arma::uword batch = 16, context = 64, width = 64, heads = 4, layers = 2, ffn = 256;
  double lr = 3e-3, weight_decay = 0.1, clip = 1.0;
  int warmup = 50;
  std::string variant = "reference", mask = "causal";
  arma::uword lora_rank = 0;
  double lora_alpha = 8;
  std::string lora_targets = "q,v";
  std::string base;  // checkpoint of a model without adapters, the frozen base for LoRA
  std::uint64_t seed = 1;
  int threads = 1;  // at the default width one thread is fastest on a shared 2-core machine
  int eval_every = 100, eval_batches = 8, sample_chars = 300;
  double temperature = 0.8;
};

struct Corpus {
  std::vector<char> alphabet;  // id -> character
  TokenIds train, val;
};

// A usage error unless `path` names a regular file (or something that reads like one, such as a pipe).
void require_file(const char* option, const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw std::invalid_argument(std::string("train: ") + option + " '" + path + "' does not exist");
  if (fs::is_directory(status)) {
    throw std::invalid_argument(std::string("train: ") + option + " '" + path + "' is a directory, expected a file");
  }
}

Corpus load_corpus(const std::string& path) {
  require_file("--text", path);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument("load_corpus: cannot open --text '" + path + "'");
  std::string text;
  try {
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  } catch (const std::exception& e) {  // libstdc++'s filebuf throws on a read error
    throw std::runtime_error("load_corpus: cannot read --text '" + path + "': " + e.what());
  }
  if (text.empty()) throw std::invalid_argument("load_corpus: --text '" + path + "' is empty");
  Corpus c;
  c.alphabet.assign(text.begin(), text.end());
  std::sort(c.alphabet.begin(), c.alphabet.end());
  c.alphabet.erase(std::unique(c.alphabet.begin(), c.alphabet.end()), c.alphabet.end());
  std::vector<std::int64_t> id(256, -1);
  for (std::size_t i = 0; i < c.alphabet.size(); ++i) id[static_cast<unsigned char>(c.alphabet[i])] = static_cast<std::int64_t>(i);
  const std::size_t split = text.size() - text.size() / 10;  // last 10% held out
  for (std::size_t i = 0; i < text.size(); ++i) (i < split ? c.train : c.val).push_back(id[static_cast<unsigned char>(text[i])]);
  return c;
}

// B windows of N+1 tokens at seeded random offsets: inputs the first N, targets the last N.
void sample_batch(const TokenIds& data, arma::uword batch, arma::uword n, std::mt19937_64& rng, TokenIds& inputs,
                  TokenIds& targets) {
  std::uniform_int_distribution<std::size_t> offset(0, data.size() - n - 1);
  inputs.clear();
  targets.clear();
  for (arma::uword b = 0; b < batch; ++b) {
    const std::size_t o = offset(rng);
    inputs.insert(inputs.end(), data.begin() + static_cast<long>(o), data.begin() + static_cast<long>(o + n));
    targets.insert(targets.end(), data.begin() + static_cast<long>(o + 1), data.begin() + static_cast<long>(o + n + 1));
  }
}

// Mean loss over fixed, seeded batches of a split (the same batches at every evaluation).
double evaluate(const Model& model, const TokenIds& data, const Options& o, std::uint64_t salt) {
  std::mt19937_64 rng(o.seed * 7919 + salt);
  TokenIds inputs, targets;
  double sum = 0;
  ped::ref::GptCache<float> cache;
  for (int i = 0; i < o.eval_batches; ++i) {
    sample_batch(data, o.batch, o.context, rng, inputs, targets);
    sum += model.forward(inputs, targets, o.batch, cache);
  }
  return sum / o.eval_batches;
}

// The --mask text in Mask::parse's syntax. A language model predicts each next token, so a mask
// that lets a token see a later one (checked over the context length T) would leak the target.
ped::Mask parse_mask(const std::string& text, std::int64_t context) {
  const ped::Mask mask = ped::Mask::parse(text);
  std::vector<ped::KeyInterval> keys;
  for (std::int64_t i = 0; i < context; ++i) {
    mask.row_intervals(i, context, context, keys);
    if (!keys.empty() && keys.back().hi > i + 1) {
      throw std::invalid_argument(ped::concat("parse_mask: '", text, "' lets token ", i, " see token ", keys.back().hi - 1,
                                              " after it (expected a causal mask, e.g. causal or "
                                              "sliding_window(left=W,right=0))"));
    }
  }
  return mask;
}

// The sample: --sample-chars characters after the first 16 of the validation text (at most T), drawn
// with a key/value cache (ped::ref::gpt_generate: one decode step per character; the model sees the
// last T/2 to T characters).
std::string generate(const Model& model, const Corpus& c, const Options& o) {
  std::mt19937_64 rng(o.seed + 17);
  const std::size_t prompt = std::min<std::size_t>({c.val.size(), 16, o.context});
  const TokenIds ids = ped::ref::gpt_generate(model, TokenIds(c.val.begin(), c.val.begin() + static_cast<long>(prompt)),
                                              static_cast<std::size_t>(o.sample_chars), o.temperature, rng, true);
  std::string out;
  for (TokenIds::value_type t : ids) out.push_back(c.alphabet[static_cast<std::size_t>(t)]);
  return out;
}

// Copies every entry of a checkpointed model without adapters into `model` by name (the LoRA base).
void load_base(const std::string& path, Model& model, ped::ref::GptConfig cfg) {
  cfg.lora_rank = 0;
  Model base(cfg, 0);
  ped::ref::AdamW<float> unused(base.layout(), {});
  ped::ref::load_checkpoint(path, base, unused);
  for (std::size_t i = 0; i < base.layout().entries.size(); ++i) model.params()[base.layout().entries[i].name] = base.params().mat(i);
}

// Bytes one training step holds, an estimate on the high side (4-byte floats): the parameters, their
// gradients and two AdamW moments (4 P); per block the cached activations of B N tokens, about
// 12 D + 3 F each (x, ln1, q, k, v, o, x1, ln2 and the mlp's h, gelu(h), dh), and the attention
// probabilities with their gradient (2 B H N^2); the head's logits, softmax and gradient (3 V B N).
double step_bytes(const ped::ref::GptConfig& c, arma::uword batch, std::size_t parameters) {
  const double bn = static_cast<double>(batch) * static_cast<double>(c.context), d = static_cast<double>(c.width),
               f = static_cast<double>(c.ffn), n = static_cast<double>(c.context);
  const double block = bn * (12 * d + 3 * f) + 2 * static_cast<double>(batch) * static_cast<double>(c.heads) * n * n;
  return 4.0 * (4 * static_cast<double>(parameters) + static_cast<double>(c.layers) * block +
                3 * static_cast<double>(c.vocab) * bn + 4 * bn * d);
}

double physical_memory_bytes() {
  return static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

// gnuplot single-quoted string: '' is a quote, nothing else is special.
std::string gnuplot_string(const std::string& text) {
  std::string out = "'";
  for (char ch : text) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

[[noreturn]] void throw_diverged(const char* what, double value, int step) {
  throw std::runtime_error("train: " + std::string(what) + " is " + std::to_string(value) + " at step " +
                           std::to_string(step) + ": training diverged (a lower --lr?); nothing written");
}

int run(const Options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  openblas_set_num_threads(o.threads);

  // Usage errors (std::invalid_argument) first, before any work and before anything is written.
  {
    std::error_code ec;
    if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec)) {
      throw std::invalid_argument("train: --out '" + o.out + "' exists and is not a directory");
    }
  }
  if (!o.base.empty()) require_file("--base", o.base);
  const Corpus c = load_corpus(o.text);
  if (c.val.size() < o.context + 1) {
    throw std::invalid_argument("train: the held-out 10% of --text has " + std::to_string(c.val.size()) +
                                " characters, fewer than context + 1 = " + std::to_string(o.context + 1));
  }
  ped::ref::GptConfig cfg{.vocab = c.alphabet.size(), .context = o.context, .width = o.width, .heads = o.heads,
                          .layers = o.layers, .ffn = o.ffn, .lora_rank = o.lora_rank, .lora_alpha = o.lora_alpha,
                          .lora_targets = ped::ref::parse_lora_targets(o.lora_targets),
                          .attention = ped::ref::parse_gpt_attention(o.variant), .mask = parse_mask(o.mask, static_cast<std::int64_t>(o.context)),
                          .threads = o.threads};
  const std::size_t parameters = ped::ref::gpt_layout(cfg).total;  // validates cfg
  if (const double need = step_bytes(cfg, o.batch, parameters), have = physical_memory_bytes(); need > have) {
    char text[320];
    std::snprintf(text, sizeof text,
                  "train: --batch %llu, --context %llu, --width %llu, --heads %llu, --layers %llu, --ffn %llu need about "
                  "%.3g GiB per step, more than this machine's %.3g GiB of memory",
                  static_cast<unsigned long long>(o.batch), static_cast<unsigned long long>(o.context),
                  static_cast<unsigned long long>(o.width), static_cast<unsigned long long>(o.heads),
                  static_cast<unsigned long long>(o.layers), static_cast<unsigned long long>(o.ffn), need / (1 << 30),
                  have / (1 << 30));
    throw std::invalid_argument(text);
  }
  Model model(cfg, o.seed);
  if (!o.base.empty()) load_base(o.base, model, cfg);
  ped::ref::AdamW<float> opt(model.layout(), {.lr = o.lr, .weight_decay = o.weight_decay, .clip_norm = o.clip});
  ped::ref::GptTensors<float> grads(model.layout());

  ped::train::OutputSet outputs(o.out);
  for (const std::string& line : outputs.recovered()) std::printf("train: %s: %s\n", o.out.c_str(), line.c_str());
  ped::train::kill_point("started");

  std::size_t trainable = 0;
  for (const auto& e : model.layout().entries) trainable += e.trainable ? e.size() : 0;
  const double uniform = std::log(static_cast<double>(cfg.vocab));
  std::printf("train: %s, %zu train / %zu validation characters, V = %llu, uniform baseline log(V) = %.4f\n",
              o.text.c_str(), c.train.size(), c.val.size(), static_cast<unsigned long long>(cfg.vocab), uniform);
  std::printf("model: D=%llu H=%llu L=%llu F=%llu T=%llu, attention %s, mask %s, LoRA rank %llu (%s), %zu of %zu parameters train\n",
              static_cast<unsigned long long>(o.width), static_cast<unsigned long long>(o.heads),
              static_cast<unsigned long long>(o.layers), static_cast<unsigned long long>(o.ffn),
              static_cast<unsigned long long>(o.context), o.variant.c_str(), cfg.mask.name().c_str(),
              static_cast<unsigned long long>(o.lora_rank), ped::ref::lora_targets_string(cfg.lora_targets).c_str(),
              trainable, model.params().data().size());

  std::ostringstream csv;
  csv << ped::schema::header_line(ped::schema::loss_columns);
  std::mt19937_64 rng(o.seed);
  TokenIds inputs, targets;
  double train_eval = 0, val_eval = 0;
  ped::ref::GptCache<float> cache;  // one for every step: its buffers are reused
  for (int step = 1; step <= o.steps; ++step) {
    // linear warmup, then cosine decay to 10% of the peak
    const double progress = static_cast<double>(step - 1) / std::max(1, o.steps - 1);
    const double lr = o.lr * std::min(1.0, static_cast<double>(step) / std::max(1, o.warmup)) *
                      (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * progress)));
    opt.set_lr(lr);
    sample_batch(c.train, o.batch, o.context, rng, inputs, targets);
    const double loss = model.forward(inputs, targets, o.batch, cache);
    if (!std::isfinite(loss)) throw_diverged("the batch loss", loss, step);
    model.backward(cache, grads);
    const double norm = opt.step(model.params(), grads);
    csv << step << "," << loss << ",";
    if (step % o.eval_every == 0 || step == o.steps) {
      train_eval = evaluate(model, c.train, o, 1);
      val_eval = evaluate(model, c.val, o, 2);
      if (!std::isfinite(train_eval) || !std::isfinite(val_eval)) {
        throw_diverged("the evaluation loss", std::isfinite(train_eval) ? val_eval : train_eval, step);
      }
      csv << val_eval;
      std::printf("step %5d/%d  batch loss %.4f  train %.4f  val %.4f  (log V %.4f)  lr %.2e  %.1f s\n", step, o.steps,
                  loss, train_eval, val_eval, uniform, lr, seconds());
      std::fflush(stdout);
    }
    csv << "," << lr << "," << norm << "," << seconds() << "\n";
  }
  const std::string sample = generate(model, c, o);

  // Every output is staged under its final name and published as one set (train/output_set.hpp).
  const fs::path& staging = outputs.staging();
  write_file_atomically(staging / "loss.csv", csv.str());
  ped::ref::save_checkpoint((staging / "checkpoint.bin").string(), model, opt);
  write_file_atomically(staging / "sample.txt", sample + "\n");
  // Relative names: `gnuplot loss.gp` in the output folder redraws the plot.
  std::ostringstream gp;
  gp << "set terminal pngcairo size 900,500 noenhanced\nset output 'loss.png'\n"
     << "set datafile separator ','\nset key top right\nset xlabel 'step'\nset ylabel 'cross-entropy (nats)'\n"
     << "set title " << gnuplot_string("tiny GPT on " + fs::path(o.text).filename().string()) << "\n"
     << "plot 'loss.csv' using 1:2 every ::1 with lines lc rgb '#9ecae1' title 'batch (train)', "
     << "'' using 1:($3 == $3 ? $3 : 1/0) every ::1 with linespoints lw 2 title 'validation', "
     << uniform << " with lines dt 2 title 'uniform log(V)'\n";
  write_file_atomically(staging / "loss.gp", gp.str());
  const ped::ProcessResult plot = ped::run_process({"gnuplot", "loss.gp"}, {.working_directory = staging});
  const fs::path dir(o.out);
  std::string plot_line;
  if (!plot.started) {
    plot_line = "plot: skipped, gnuplot is not installed (the curve is in " + (dir / "loss.csv").string() + ")";
  } else if (plot.exit_code != 0 || !fs::exists(staging / "loss.png")) {
    fs::remove(staging / "loss.png");
    plot_line = "plot: gnuplot failed (exit " + std::to_string(plot.exit_code) + "); the curve is in " + (dir / "loss.csv").string();
  } else {
    plot_line = "plot: " + (dir / "loss.png").string();
  }
  outputs.publish();

  std::printf("%s\n", plot_line.c_str());
  std::printf("outputs: %s (loss.csv, checkpoint.bin, sample.txt, loss.gp%s)\n", o.out.c_str(),
              fs::exists(dir / "loss.png") ? ", loss.png" : "");
  std::printf("sample (seed %llu, temperature %.3g):\n----\n%s\n----\n", static_cast<unsigned long long>(o.seed),
              o.temperature, sample.c_str());
  std::printf("final: train loss %.4f, validation loss %.4f, uniform baseline log(V) = %.4f, %.1f s\n", train_eval,
              val_eval, uniform, seconds());
  return 0;
}

using ped::cli::finite_real;
using ped::cli::integer_in;
using ped::cli::real_in;

// A library message "fn: what" without its function name, for a usage error that names the option.
std::string without_function(const std::string& message) {
  const std::size_t colon = message.find(": ");
  return colon == std::string::npos ? message : message.substr(colon + 2);
}

// Messages thrown by run() itself start with "train: ", which main's own prefix already says.
std::string without_prefix(const std::string& message) {
  return message.starts_with("train: ") ? message.substr(7) : message;
}

}  // namespace

int main(int argc, char** argv) {
  using ULong = unsigned long long;
  Options o;
  CLI::App app{"train: a character-level tiny GPT, hand-derived backward and AdamW (no LibTorch)"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::Throw);  // an option given twice is an error
  std::map<std::string, std::string> expects;  // option -> what its value must be, for the usage messages
  auto checked = [&](const std::string& name, auto& value, const std::string& help, const CLI::Validator& valid) {
    expects[name] = valid.get_description();
    return app.add_option(name, value, help)->capture_default_str()->check(valid);  // --help shows the range
  };
  // Sizes: far above what this model is for, low enough that no product of sizes overflows; the
  // library refuses more than kGptMaxParameters parameters, and run() more memory than the machine has.
  constexpr ULong kMaxSize = 65536;
  constexpr int kMaxCount = 100'000'000;
  app.add_option("--text", o.text, "Training text; the last 10% is held out for validation")->capture_default_str();
  checked("--steps", o.steps, "Optimizer steps", integer_in(1, kMaxCount));
  app.add_option("--out", o.out, "Output directory: loss.csv, loss.png, loss.gp, checkpoint.bin, sample.txt")
      ->capture_default_str()
      ->check(ped::cli::non_empty());
  checked("--batch", o.batch, "Sequences per batch (B)", integer_in<ULong>(1, kMaxSize));
  checked("--context", o.context, "Tokens per sequence and positional table length (T)", integer_in<ULong>(1, kMaxSize));
  checked("--width", o.width, "Model width (D)", integer_in<ULong>(1, kMaxSize));
  checked("--heads", o.heads, "Attention heads (H), dividing the width", integer_in<ULong>(1, kMaxSize));
  checked("--layers", o.layers, "Transformer blocks (L)", integer_in<ULong>(1, 1024));
  checked("--ffn", o.ffn, "Feed-forward width (F)", integer_in<ULong>(1, 16 * kMaxSize));
  checked("--lr", o.lr, "Peak learning rate (linear warmup, cosine decay to 10%)", real_in(0, false));
  checked("--warmup", o.warmup, "Warmup steps", integer_in(0, kMaxCount));
  checked("--weight-decay", o.weight_decay, "AdamW decoupled weight decay", real_in(0, false));
  checked("--clip", o.clip, "Gradient-norm clipping threshold (<= 0: none)", finite_real());
  std::string attention_names;
  for (const std::string& name : ped::ref::gpt_attention_names()) attention_names += (attention_names.empty() ? "" : ", ") + name;
  // A name the library refuses is a usage error naming the option.
  auto accepted_by = [](auto parse, const std::string& expected) {
    return CLI::Validator(
        [parse](std::string& text) -> std::string {
          try {
            parse(text);
          } catch (const std::invalid_argument& e) {
            return without_function(e.what());
          }
          return "";
        },
        expected);
  };
  app.add_option("--variant", o.variant, "Attention: " + attention_names)
      ->capture_default_str()
      ->check(accepted_by([](const std::string& t) { ped::ref::parse_gpt_attention(t); }, attention_names));
  app.add_option("--mask", o.mask,
                 "Attention mask in the syntax of Mask::parse, one that sees no later token: causal, "
                 "sliding_window(left=W,right=0) (W keys back), intersections and unions of causal masks")
      ->capture_default_str()
      ->check(accepted_by([](const std::string& t) { ped::Mask::parse(t); }, ped::Mask::syntax()));
  checked("--lora-rank", o.lora_rank, "LoRA rank r (0: train every parameter)", integer_in<ULong>(0, kMaxSize));
  checked("--lora-alpha", o.lora_alpha, "LoRA alpha (scale alpha / r)", finite_real());
  app.add_option("--lora-targets", o.lora_targets, "LoRA targets, a subset of q,k,v,o,mlp")
      ->capture_default_str()
      ->check(accepted_by([](const std::string& t) { ped::ref::parse_lora_targets(t); }, "a subset of q,k,v,o,mlp"));
  app.add_option("--base", o.base, "Checkpoint of a model without adapters: the frozen base of a LoRA fine-tune");
  checked("--seed", o.seed, "Seed of initialisation, batches and sampling",
          integer_in<std::uint64_t>(0, std::numeric_limits<std::uint64_t>::max()));
  checked("--threads", o.threads, "Threads for OpenBLAS and the attention kernels", integer_in(1, 1024));
  checked("--eval-every", o.eval_every, "Steps between evaluations", integer_in(1, kMaxCount));
  checked("--eval-batches", o.eval_batches, "Batches per evaluation", integer_in(1, 1'000'000));
  checked("--sample-chars", o.sample_chars, "Characters of generated text", integer_in(0, 10'000'000));
  checked("--temperature", o.temperature, "Sampling temperature", real_in(0, true));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // "--steps: <what is wrong>"; a message that does not say the range (a repeated option) gets it added
    const std::string message = e.what();
    const auto known = expects.find(message.substr(0, message.find(':')));
    std::fprintf(stderr, "train: usage error: %s", message.c_str());
    if (known != expects.end() && message.find("expected") == std::string::npos) {
      std::fprintf(stderr, "; %s takes %s, once", known->first.c_str(), known->second.c_str());
    }
    std::fprintf(stderr, "\nRun with --help for more information.\n");
    return 2;
  }
  try {
    parse_mask(o.mask, static_cast<std::int64_t>(o.context));  // causality needs --context: checked after parsing
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "train: usage error: --mask: %s\n", without_function(e.what()).c_str());
    return 2;
  }
  try {
    return run(o);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "train: usage error: %s\n", without_prefix(e.what()).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train: error: %s\n", without_prefix(e.what()).c_str());
    return 1;
  }
}
