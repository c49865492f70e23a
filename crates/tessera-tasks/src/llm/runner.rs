//! The worker-side half of an LLM: one llama.cpp context, many sequences, one token per step.

use std::time::Instant;

use tessera_engines::llama::{
    BatchEntry, DecodeError, GgufContext, GgufModel, Sampler, Token, log_probabilities,
};
use tokio::sync::mpsc;

use super::text::TextAssembler;
use super::{Event, FinishReason, Generation, Job, TokenLogprob, Usage};
use crate::TaskError;
use crate::registry::StepRunner;

/// Runs every sequence of one model: continuous batching over a shared KV cache.
pub struct GenerateRunner {
    id: String,
    model: GgufModel,
    context: GgufContext,
    slots: Vec<Slot>,
}

/// One sequence id of the KV cache: what it holds, and the generation using it, if any.
struct Slot {
    /// The tokens whose keys and values are in the cache under this sequence id, in order.
    cached: Vec<Token>,
    live: Option<Live>,
}

/// A generation in progress.
struct Live {
    prompt: Vec<Token>,
    sampler: Sampler,
    events: mpsc::UnboundedSender<Event>,
    text: TextAssembler,
    /// Prompt tokens not yet in the cache start here.
    fed: usize,
    reused: usize,
    generated: usize,
    max_new: usize,
    /// The last sampled token, to be decoded next.
    next: Option<Token>,
    logprobs: Option<usize>,
    waiting_logprobs: Vec<TokenLogprob>,
    started: Instant,
}

impl GenerateRunner {
    /// A runner over `context`, with `sequences` slots.
    pub fn new(
        id: String,
        model: GgufModel,
        context: GgufContext,
        sequences: usize,
    ) -> GenerateRunner {
        let slots = (0..sequences.max(1))
            .map(|_| Slot {
                cached: Vec::new(),
                live: None,
            })
            .collect();
        GenerateRunner {
            id,
            model,
            context,
            slots,
        }
    }

    /// Publishes how many sequences are generating, after every change.
    fn publish(&self) {
        let live = self.slots.iter().filter(|s| s.live.is_some()).count();
        metrics::gauge!("tessera_llm_sequences", "model" => self.id.clone()).set(live as f64);
    }

    /// Ends slot `index`'s generation: sends what is held, then `Done`.
    fn finish(&mut self, index: usize, finish: FinishReason, flush: bool) {
        let Some(mut live) = self.slots[index].live.take() else {
            return;
        };
        let rest = if flush {
            live.text.flush()
        } else {
            String::new()
        };
        if !rest.is_empty() || !live.waiting_logprobs.is_empty() {
            let _ = live.events.send(Event::Text {
                text: rest,
                logprobs: std::mem::take(&mut live.waiting_logprobs),
            });
        }
        let usage = Usage {
            prompt_tokens: live.prompt.len(),
            completion_tokens: live.generated,
            cached_tokens: live.reused,
        };
        tracing::debug!(
            sequence = index,
            prompt = usage.prompt_tokens,
            cached = usage.cached_tokens,
            generated = usage.completion_tokens,
            seconds = live.started.elapsed().as_secs_f32(),
            finish = finish.as_str(),
            "generation ended"
        );
        let _ = live.events.send(Event::Done { finish, usage });
    }

    /// Frees the cache of slots nobody uses, to make room.
    fn drop_idle_caches(&mut self) -> bool {
        let mut freed = false;
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if slot.live.is_none() && !slot.cached.is_empty() {
                self.context.truncate(index as i32, 0);
                slot.cached.clear();
                freed = true;
            }
        }
        freed
    }

    /// The batch of this step: one token for every generating sequence, then prompt chunks
    /// up to the batch size. Returns the entries and, per entry with logits, its slot.
    fn plan(&self) -> (Vec<BatchEntry>, Vec<(usize, usize)>) {
        let budget = self.context.batch_size();
        let mut entries = Vec::new();
        let mut sampled = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(live) = &slot.live
                && let Some(token) = live.next
            {
                sampled.push((entries.len(), index));
                entries.push(BatchEntry {
                    token,
                    position: slot.cached.len() as i32,
                    sequence: index as i32,
                    logits: true,
                });
            }
        }
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(live) = &slot.live else { continue };
            if live.next.is_some() || live.fed >= live.prompt.len() {
                continue;
            }
            let room = budget.saturating_sub(entries.len());
            if room == 0 {
                break;
            }
            let end = (live.fed + room).min(live.prompt.len());
            for (offset, &token) in live.prompt[live.fed..end].iter().enumerate() {
                let at = live.fed + offset;
                let last = at + 1 == live.prompt.len();
                if last {
                    sampled.push((entries.len(), index));
                }
                entries.push(BatchEntry {
                    token,
                    position: at as i32,
                    sequence: index as i32,
                    logits: last,
                });
            }
        }
        (entries, sampled)
    }

    /// Records a decoded batch in the slots' caches.
    fn commit(&mut self, entries: &[BatchEntry]) {
        for entry in entries {
            let slot = &mut self.slots[entry.sequence as usize];
            slot.cached.push(entry.token);
            if let Some(live) = &mut slot.live {
                // A sequence is either still reading its prompt or generating, never both.
                if live.fed < live.prompt.len() {
                    live.fed += 1;
                } else {
                    live.next = None;
                }
            }
        }
    }

    /// Samples the next token of `index` from batch entry `at`, and sends or ends.
    fn advance(&mut self, index: usize, at: usize) {
        let context_size = self.context.context_size() as usize;
        let cached = self.slots[index].cached.len();
        let Some(live) = self.slots[index].live.as_mut() else {
            return;
        };
        let token = live.sampler.sample(&self.context, at);
        let piece = self.model.piece(token, false);
        if let Some(top) = live.logprobs {
            // The sampler works on its own copy, so these are still the model's raw logits.
            let (chosen, best) = log_probabilities(self.context.logits(at), token, top);
            live.waiting_logprobs.push(TokenLogprob {
                token: String::from_utf8_lossy(&piece).into_owned(),
                bytes: piece.clone(),
                logprob: chosen,
                top: best
                    .into_iter()
                    .map(|(t, l)| {
                        let bytes = self.model.piece(t, false);
                        (String::from_utf8_lossy(&bytes).into_owned(), bytes, l)
                    })
                    .collect(),
            });
        }
        if self.model.is_end_of_generation(token) {
            self.finish(index, FinishReason::Stop, true);
            return;
        }
        live.generated += 1;
        let assembled = live.text.push(&piece);
        if !assembled.text.is_empty() || (!live.waiting_logprobs.is_empty() && !assembled.stopped) {
            let _ = live.events.send(Event::Text {
                text: assembled.text,
                logprobs: std::mem::take(&mut live.waiting_logprobs),
            });
        }
        if assembled.stopped {
            self.finish(index, FinishReason::Stop, false);
        } else if live.generated >= live.max_new || cached + 1 >= context_size {
            self.finish(index, FinishReason::Length, true);
        } else {
            live.next = Some(token);
        }
    }
}

/// How many leading tokens two sequences share.
fn common_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl StepRunner for GenerateRunner {
    type Input = Job;
    type Output = Generation;

    fn free_slots(&self) -> usize {
        self.slots.iter().filter(|s| s.live.is_none()).count()
    }

    fn busy(&self) -> bool {
        self.slots.iter().any(|s| s.live.is_some())
    }

    fn admit(&mut self, job: Job) -> Result<Generation, TaskError> {
        let context_size = self.context.context_size() as usize;
        if job.tokens.len() >= context_size {
            return Err(TaskError::InvalidInput(format!(
                "the prompt is {} tokens, but the context holds {context_size}",
                job.tokens.len()
            )));
        }
        // The free slot that shares the longest prefix with the prompt, and the longest prefix
        // cached anywhere (a busy sequence's system prompt counts too).
        let shared = |slot: &Slot| common_prefix(&slot.cached, &job.tokens);
        let Some(mine) = (0..self.slots.len())
            .filter(|&i| self.slots[i].live.is_none())
            .max_by_key(|&i| {
                (
                    shared(&self.slots[i]),
                    usize::MAX - self.slots[i].cached.len(),
                )
            })
        else {
            return Err(TaskError::Internal("no free sequence".into()));
        };
        let (source, best) = (0..self.slots.len())
            .map(|i| (i, shared(&self.slots[i])))
            .max_by_key(|&(i, n)| (n, i == mine))
            .unwrap_or((mine, 0));
        // At least one prompt token is decoded, so the first sample has logits.
        let reuse = best.min(job.tokens.len() - 1);
        if source != mine && reuse > shared(&self.slots[mine]) {
            self.context
                .share_prefix(source as i32, mine as i32, reuse as u32);
        } else {
            self.context.truncate(mine as i32, reuse as u32);
        }
        let slot = &mut self.slots[mine];
        slot.cached = job.tokens[..reuse].to_vec();
        let (events, receiver) = mpsc::unbounded_channel();
        let prompt_tokens = job.tokens.len();
        slot.live = Some(Live {
            prompt: job.tokens,
            sampler: job.sampler,
            events,
            text: TextAssembler::new(job.stops),
            fed: reuse,
            reused: reuse,
            generated: 0,
            max_new: job.max_new,
            next: None,
            logprobs: job.logprobs,
            waiting_logprobs: Vec::new(),
            started: Instant::now(),
        });
        self.publish();
        Ok(Generation {
            events: receiver,
            prompt_tokens,
            tool_format: job.tool_format,
        })
    }

    fn step(&mut self) {
        self.decode_step();
        self.publish();
    }

    fn abort_all(&mut self, message: &str) {
        self.fail_all(message);
        self.publish();
    }
}

impl GenerateRunner {
    fn decode_step(&mut self) {
        // A caller that hung up frees its sequence now; what it computed stays cached.
        for slot in &mut self.slots {
            if slot.live.as_ref().is_some_and(|l| l.events.is_closed()) {
                slot.live = None;
            }
        }
        let (entries, sampled) = self.plan();
        if entries.is_empty() {
            return;
        }
        match self.context.decode(&entries) {
            Ok(()) => {}
            Err(DecodeError::NoSpace) => {
                if !self.drop_idle_caches() {
                    // Every cell belongs to a running sequence: the longest ends here.
                    if let Some(longest) = (0..self.slots.len())
                        .filter(|&i| self.slots[i].live.is_some())
                        .max_by_key(|&i| self.slots[i].cached.len())
                    {
                        tracing::warn!(
                            sequence = longest,
                            tokens = self.slots[longest].cached.len(),
                            "the KV cache is full; ending the longest generation"
                        );
                        self.finish(longest, FinishReason::Length, true);
                    }
                }
                return;
            }
            Err(DecodeError::Failed(message)) => {
                self.fail_all(&message);
                return;
            }
        }
        self.commit(&entries);
        for (at, index) in sampled {
            self.advance(index, at);
        }
    }

    /// Ends every generation with `message` and forgets the cache, which may no longer hold
    /// what the slots think it does.
    fn fail_all(&mut self, message: &str) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let Some(live) = slot.live.take() {
                let _ = live.events.send(Event::Failed(message.to_string()));
            }
            // The cache may not match what we think it holds any more.
            self.context.truncate(index as i32, 0);
            slot.cached.clear();
        }
    }
}
