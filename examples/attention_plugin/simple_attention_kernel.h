/* A simple, correct attention kernel behind the pedestrian attention plugin ABI: one query row at
 * a time, scores and softmax in double, any strides, every mask kind of the ABI. Not fast; written
 * to be read. simple_attention.c wraps it into a plugin. */
#ifndef SIMPLE_ATTENTION_KERNEL_H
#define SIMPLE_ATTENTION_KERNEL_H

#include <pedestrian/attention_plugin.h>

int simple_attention_forward(const PedAttentionForwardArgs* args, char* error, size_t error_capacity);
int simple_attention_backward(const PedAttentionBackwardArgs* args, char* error, size_t error_capacity);

#endif
