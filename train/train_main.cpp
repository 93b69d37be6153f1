// train: a character-level tiny GPT trained with the hand-derived backward of reference/ and AdamW,
// no LibTorch. Reads a text (by default the GPL-3 licence every Debian machine has), holds out its
// last 10% for validation, prints progress, writes the loss curve (CSV, atomically, and a gnuplot PNG),
// a checkpoint, and a seeded sample of generated text.
//
// Exit codes: 0 done, 1 a runtime failure (I/O), 2 a usage error (bad option or value, empty text).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "reference/adamw.hpp"
#include "reference/checkpoint.hpp"
#include "reference/gpt.hpp"
#include "reports/atomic_file.hpp"

extern "C" void openblas_set_num_threads(int);

namespace {

using ped::ref::TokenIds;
using Model = ped::ref::Gpt<float>;
namespace fs = std::filesystem;
using ped::reports::write_file_atomically;

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

Corpus load_corpus(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument("load_corpus: cannot open --text '" + path + "'");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
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
  for (int i = 0; i < o.eval_batches; ++i) {
    sample_batch(data, o.batch, o.context, rng, inputs, targets);
    ped::ref::GptCache<float> cache;
    sum += model.forward(inputs, targets, o.batch, cache);
  }
  return sum / o.eval_batches;
}

ped::Mask parse_mask(const std::string& text) {
  if (text == "causal") return ped::Mask::causal();
  if (text.rfind("window:", 0) == 0) {
    std::size_t used = 0;
    long long w = -1;
    try {
      w = std::stoll(text.substr(7), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size() - 7 || w < 0) {
      throw std::invalid_argument("parse_mask: '" + text + "' has no window size >= 0 after 'window:'");
    }
    return ped::Mask::causal_sliding_window(w);
  }
  throw std::invalid_argument("parse_mask: unknown mask '" + text + "', expected causal or window:W");
}

std::string generate(const Model& model, const Corpus& c, const Options& o) {
  std::mt19937_64 rng(o.seed + 17);
  TokenIds ids(c.val.begin(), c.val.begin() + static_cast<long>(std::min<std::size_t>(c.val.size(), 16)));
  std::string out;
  for (TokenIds::value_type t : ids) out.push_back(c.alphabet[static_cast<std::size_t>(t)]);
  for (int i = 0; i < o.sample_chars; ++i) {
    const std::size_t keep = std::min<std::size_t>(ids.size(), o.context);
    const TokenIds window(ids.end() - static_cast<long>(keep), ids.end());
    const arma::fmat z = model.logits(window, 1);
    arma::vec p = arma::conv_to<arma::vec>::from(z.col(z.n_cols - 1)) / o.temperature;
    p = arma::exp(p - p.max());
    std::discrete_distribution<std::int64_t> pick(p.begin(), p.end());
    ids.push_back(pick(rng));
    out.push_back(c.alphabet[static_cast<std::size_t>(ids.back())]);
  }
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

int run(const Options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  openblas_set_num_threads(o.threads);

  // Usage errors (std::invalid_argument) first, before any work.
  if (o.steps < 1) throw std::invalid_argument("train: --steps " + std::to_string(o.steps) + ", expected >= 1");
  if (o.threads < 1) throw std::invalid_argument("train: --threads " + std::to_string(o.threads) + ", expected >= 1");
  const Corpus c = load_corpus(o.text);
  if (c.val.size() < o.context + 1) {
    throw std::invalid_argument("train: the held-out 10% of --text has " + std::to_string(c.val.size()) +
                                " characters, fewer than context + 1 = " + std::to_string(o.context + 1));
  }
  ped::ref::GptConfig cfg{.vocab = c.alphabet.size(), .context = o.context, .width = o.width, .heads = o.heads,
                          .layers = o.layers, .ffn = o.ffn, .lora_rank = o.lora_rank, .lora_alpha = o.lora_alpha,
                          .lora_targets = ped::ref::parse_lora_targets(o.lora_targets),
                          .attention = ped::ref::parse_gpt_attention(o.variant), .mask = parse_mask(o.mask),
                          .threads = o.threads};
  Model model(cfg, o.seed);
  if (!o.base.empty()) load_base(o.base, model, cfg);
  ped::ref::AdamW<float> opt(model.layout(), {.lr = o.lr, .weight_decay = o.weight_decay, .clip_norm = o.clip});
  ped::ref::GptTensors<float> grads(model.layout());
  fs::create_directories(o.out);

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
  csv << "step,train_loss,val_loss,lr,grad_norm,seconds\n";
  std::mt19937_64 rng(o.seed);
  TokenIds inputs, targets;
  double train_eval = 0, val_eval = 0;
  for (int step = 1; step <= o.steps; ++step) {
    // linear warmup, then cosine decay to 10% of the peak
    const double progress = static_cast<double>(step - 1) / std::max(1, o.steps - 1);
    const double lr = o.lr * std::min(1.0, static_cast<double>(step) / std::max(1, o.warmup)) *
                      (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * progress)));
    opt.set_lr(lr);
    sample_batch(c.train, o.batch, o.context, rng, inputs, targets);
    ped::ref::GptCache<float> cache;
    const double loss = model.forward(inputs, targets, o.batch, cache);
    model.backward(cache, grads);
    const double norm = opt.step(model.params(), grads);
    csv << step << "," << loss << ",";
    if (step % o.eval_every == 0 || step == o.steps) {
      train_eval = evaluate(model, c.train, o, 1);
      val_eval = evaluate(model, c.val, o, 2);
      csv << val_eval;
      std::printf("step %5d/%d  batch loss %.4f  train %.4f  val %.4f  (log V %.4f)  lr %.2e  %.1f s\n", step, o.steps,
                  loss, train_eval, val_eval, uniform, lr, seconds());
      std::fflush(stdout);
    }
    csv << "," << lr << "," << norm << "," << seconds() << "\n";
  }
  const fs::path dir(o.out);
  write_file_atomically(dir / "loss.csv", csv.str());
  ped::ref::save_checkpoint((dir / "checkpoint.bin").string(), model, opt);

  if (std::system("command -v gnuplot > /dev/null 2>&1") == 0) {
    // gnuplot draws into a temp file beside loss.png, renamed into place only when it succeeded
    ped::reports::StagedFiles staged;
    const fs::path png = staged.reserve(dir / "loss.png");
    std::ostringstream gp;
    gp << "set terminal pngcairo size 900,500 noenhanced\nset output '" << png.string() << "'\n"
       << "set datafile separator ','\nset key top right\nset xlabel 'step'\nset ylabel 'cross-entropy (nats)'\n"
       << "set title 'tiny GPT on " << fs::path(o.text).filename().string() << "'\n"
       << "plot '" << (dir / "loss.csv").string() << "' using 1:2 every ::1 with lines lc rgb '#9ecae1' title 'batch (train)', "
       << "'' using 1:($3 == $3 ? $3 : 1/0) every ::1 with linespoints lw 2 title 'validation', "
       << uniform << " with lines dt 2 title 'uniform log(V)'\n";
    write_file_atomically(dir / "loss.gp", gp.str());
    const std::string cmd = "gnuplot '" + (dir / "loss.gp").string() + "'";
    if (std::system(cmd.c_str()) != 0) {
      std::printf("plot: gnuplot failed; the curve is in %s\n", (dir / "loss.csv").c_str());
    } else {
      staged.commit();
      std::printf("plot: %s\n", (dir / "loss.png").c_str());
    }
  } else {
    std::printf("plot: skipped, gnuplot is not installed (the curve is in %s)\n", (dir / "loss.csv").c_str());
  }

  const std::string sample = generate(model, c, o);
  write_file_atomically(dir / "sample.txt", sample + "\n");
  std::printf("sample (seed %llu, temperature %.2f):\n----\n%s\n----\n", static_cast<unsigned long long>(o.seed),
              o.temperature, sample.c_str());
  std::printf("final: train loss %.4f, validation loss %.4f, uniform baseline log(V) = %.4f, %.1f s\n", train_eval,
              val_eval, uniform, seconds());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"train: a character-level tiny GPT, hand-derived backward and AdamW (no LibTorch)"};
  app.add_option("--text", o.text, "Training text; the last 10% is held out for validation")->capture_default_str();
  app.add_option("--steps", o.steps, "Optimizer steps")->capture_default_str();
  app.add_option("--out", o.out, "Output directory: loss.csv, loss.png, checkpoint.bin, sample.txt")->capture_default_str();
  app.add_option("--batch", o.batch, "Sequences per batch (B)")->capture_default_str();
  app.add_option("--context", o.context, "Tokens per sequence and positional table length (T)")->capture_default_str();
  app.add_option("--width", o.width, "Model width (D)")->capture_default_str();
  app.add_option("--heads", o.heads, "Attention heads (H), dividing the width")->capture_default_str();
  app.add_option("--layers", o.layers, "Transformer blocks (L)")->capture_default_str();
  app.add_option("--ffn", o.ffn, "Feed-forward width (F)")->capture_default_str();
  app.add_option("--lr", o.lr, "Peak learning rate (linear warmup, cosine decay to 10%)")->capture_default_str();
  app.add_option("--warmup", o.warmup, "Warmup steps")->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app.add_option("--clip", o.clip, "Gradient-norm clipping threshold (<= 0: none)")->capture_default_str();
  std::string attention_names;
  for (const std::string& name : ped::ref::gpt_attention_names()) attention_names += (attention_names.empty() ? "" : ", ") + name;
  app.add_option("--variant", o.variant, "Attention: " + attention_names)->capture_default_str();
  app.add_option("--mask", o.mask, "Attention mask: causal or window:W (causal sliding window of W keys back)")
      ->capture_default_str();
  app.add_option("--lora-rank", o.lora_rank, "LoRA rank r (0: train every parameter)")->capture_default_str();
  app.add_option("--lora-alpha", o.lora_alpha, "LoRA alpha (scale alpha / r)")->capture_default_str();
  app.add_option("--lora-targets", o.lora_targets, "LoRA targets, a subset of q,k,v,o,mlp")->capture_default_str();
  app.add_option("--base", o.base, "Checkpoint of a model without adapters: the frozen base of a LoRA fine-tune");
  app.add_option("--seed", o.seed, "Seed of initialisation, batches and sampling")->capture_default_str();
  app.add_option("--threads", o.threads, "Threads for OpenBLAS and the attention kernels")->capture_default_str();
  app.add_option("--eval-every", o.eval_every, "Steps between evaluations")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--eval-batches", o.eval_batches, "Batches per evaluation")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--sample-chars", o.sample_chars, "Characters of generated text")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", o.temperature, "Sampling temperature")->capture_default_str()->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  try {
    return run(o);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "train: usage error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train: error: %s\n", e.what());
    return 1;
  }
}
