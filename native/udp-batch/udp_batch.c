/*
 * udp_batch: UDP sockets read with recvmmsg and written with sendmmsg, for the DNS
 * responder (src/global/udp-batch.ts is the only caller; docs/dns-batching.md says why).
 *
 * Node's dgram makes one recvmsg, one JS callback and one sendto per datagram, and that
 * per-packet cost is the responder's ceiling (a bare dgram echo reaches 0.5x gdnsd).
 * Here each socket is watched by the main thread's event loop (a uv_poll handle, as
 * dgram's own sockets are); when it is readable, one recvmmsg takes up to a batch, JS
 * gets it as one Buffer, answers it and sends the answers with one sendmmsg. No extra
 * thread: on a 2-core machine a hand-off between threads cost more than it saved.
 * Mechanism only: what to answer, and whom to limit, stays in TypeScript.
 *
 * A batch as JS sees it, one Buffer: `count` records of META bytes, then the datagrams.
 *   record i: u32 offset of its bytes in the Buffer, u16 length, u16 port,
 *             u8 family (4 or 6), 7 bytes unused, 16 address bytes (IPv4 in the first 4).
 * sendBatch takes the same layout (count records, offsets into the same Buffer).
 *
 * Built with plain `cc` against node-api-headers (scripts/build-native.mjs); N-API
 * symbols resolve from the node binary at load, so one .node serves Node 20 and 24.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define NAPI_VERSION 8
#include <node_api.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

#define META 32
#define MAX_BATCH 64
/*
 * Room for any UDP datagram, so nothing dgram would deliver is cut here. Address space
 * only: the block (one for all sockets) is mmap'd by malloc and a page is touched only
 * when a datagram that long arrives, so it holds about MAX_BATCH pages in practice.
 */
#define SLOT 65536

/*
 * The few libuv calls used, declared here: node-api-headers has no uv.h, and these are
 * libuv 1.x's stable ABI, exported by every node binary. The handle's size is asked of
 * libuv at run time (uv_handle_size), and its first field is `void *data` in every 1.x.
 */
typedef struct uv_poll_s uv_poll_t;
typedef struct uv_handle_s uv_handle_t;
typedef void (*uv_poll_cb)(uv_poll_t *handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t *handle);
extern size_t uv_handle_size(int type);
extern int uv_poll_init(struct uv_loop_s *loop, uv_poll_t *handle, int fd);
extern int uv_poll_start(uv_poll_t *handle, int events, uv_poll_cb cb);
extern int uv_poll_stop(uv_poll_t *handle);
extern void uv_close(uv_handle_t *handle, uv_close_cb close_cb);
#define UV_POLL_HANDLE 8
#define UV_READABLE_EVENT 1

/* Batches up to this many bytes (records and datagrams) go through one kept Buffer. */
#define KEPT_BUFFER (MAX_BATCH * (META + 1024))

/*
 * What every socket's read uses, once per environment (napi_set_instance_data): all of
 * them are read on its one event loop thread, one at a time, and nothing here is used
 * after the JS call returns, so 64 sockets cost no more memory than one.
 */
typedef struct {
  uint8_t *slots;
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in6 from[MAX_BATCH];
  napi_ref kept;
  uint8_t *kept_data;
} shared_t;

typedef struct {
  int fd;
  int batch;
  int stopped;
  napi_env env;
  uv_poll_t *poll;
  napi_ref callback;
  napi_async_context async;
  shared_t *shared;
} receiver_t;

#define CHECK(call)                                            \
  do {                                                         \
    if ((call) != napi_ok) {                                   \
      napi_throw_error(env, NULL, "udp_batch: " #call " failed"); \
      return NULL;                                             \
    }                                                          \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : "EUDPBATCH", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_throw(env, error);
  return NULL;
}

static void write_meta(uint8_t *m, uint32_t offset, uint16_t len, const struct sockaddr_in6 *sa) {
  memset(m, 0, META);
  memcpy(m, &offset, 4);
  memcpy(m + 4, &len, 2);
  if (sa->sin6_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    uint16_t port = ntohs(s4->sin_port);
    memcpy(m + 6, &port, 2);
    m[8] = 4;
    memcpy(m + 16, &s4->sin_addr, 4);
  } else {
    uint16_t port = ntohs(sa->sin6_port);
    memcpy(m + 6, &port, 2);
    m[8] = 6;
    memcpy(m + 16, &sa->sin6_addr, 16);
  }
}

/*
 * The socket is readable (libuv's epoll, on the main thread): one recvmmsg of up to a
 * batch, handed to JS as one Buffer. One batch per socket per turn of the event loop:
 * a flooded socket gets no more turns than the others, and its excess stays (and is
 * dropped) in its own kernel queue.
 */
static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  receiver_t *r = *(receiver_t **)handle;
  if (status < 0 || r->stopped) return;
  shared_t *sh = r->shared;
  for (int i = 0; i < r->batch; i++) {
    memset(&sh->msgs[i].msg_hdr, 0, sizeof sh->msgs[i].msg_hdr);
    sh->msgs[i].msg_hdr.msg_name = &sh->from[i];
    sh->msgs[i].msg_hdr.msg_namelen = sizeof sh->from[i];
    sh->msgs[i].msg_hdr.msg_iov = &sh->iov[i];
    sh->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n = recvmmsg(r->fd, sh->msgs, r->batch, MSG_DONTWAIT, NULL);
  if (n <= 0) return;
  uint32_t kept = 0, bytes = 0;
  for (int i = 0; i < n; i++) {
    if (!(sh->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
      kept++;
      bytes += sh->msgs[i].msg_len;
    }
  }
  if (kept == 0) return;
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  size_t size = (size_t)kept * META + bytes;
  napi_value argv[2], cb, global, result;
  uint8_t *data;
  if (size <= KEPT_BUFFER) {
    napi_get_reference_value(env, sh->kept, &argv[0]);
    data = sh->kept_data;
  } else if (napi_create_buffer(env, size, (void **)&data, &argv[0]) != napi_ok) {
    napi_close_handle_scope(env, scope);
    return;
  }
  uint32_t at = kept * META, k = 0;
  for (int i = 0; i < n; i++) {
    if (sh->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
    uint32_t len = sh->msgs[i].msg_len;
    write_meta(data + k * META, at, (uint16_t)len, &sh->from[i]);
    memcpy(data + at, sh->slots + (size_t)i * SLOT, len);
    at += len;
    k++;
  }
  napi_create_uint32(env, kept, &argv[1]);
  napi_get_reference_value(env, r->callback, &cb);
  napi_get_global(env, &global);
  if (napi_make_callback(env, r->async, global, cb, 2, argv, &result) == napi_pending_exception) {
    /* The JS side promises not to throw; if it does, report it as Node reports an uncaught error. */
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  napi_close_handle_scope(env, scope);
}

static void free_receiver(uv_handle_t *handle) {
  receiver_t *r = *(receiver_t **)handle;
  free(r->poll);
  free(r);
}

/* bind(address: string, port: number, reusePort: boolean): [fd, port] */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char address[64];
  size_t alen;
  uint32_t port;
  bool reuse;
  CHECK(napi_get_value_string_utf8(env, argv[0], address, sizeof address, &alen));
  CHECK(napi_get_value_uint32(env, argv[1], &port));
  CHECK(napi_get_value_bool(env, argv[2], &reuse));
  struct sockaddr_in6 sa;
  socklen_t salen;
  memset(&sa, 0, sizeof sa);
  struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
  int family;
  if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
    family = AF_INET;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    salen = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, address, &sa.sin6_addr) == 1) {
    family = AF_INET6;
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    salen = sizeof sa;
  } else {
    return throw_errno(env, "udp_batch: not an IP address", EINVAL);
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "SO_REUSEPORT", e);
  }
  if (bind(fd, (struct sockaddr *)&sa, salen) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  struct sockaddr_in6 bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  napi_value out, vfd, vport;
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_create_int32(env, fd, &vfd));
  CHECK(napi_create_uint32(env, ntohs(bound.sin6_port), &vport));
  CHECK(napi_set_element(env, out, 0, vfd));
  CHECK(napi_set_element(env, out, 1, vport));
  return out;
}

/*
 * steerByPrefix(fd, sockets): the reuseport group's sockets are picked by a hash of the
 * source address's /24 (IPv4) or /56 (IPv6), so one prefix's flood fills one socket's
 * queue. In a reuseport program the packet starts at the UDP payload, so the IP header
 * is read at SKF_NET_OFF (negative offsets, relative to the network header). Hash:
 * (prefix * 0x9E3779B1) >> 16, mod sockets; src/global/udp-batch.ts has its twin.
 */
static napi_value js_steer_by_prefix(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t sockets;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_uint32(env, argv[1], &sockets));
  if (sockets == 0) sockets = 1;
  struct sock_filter code[] = {
    /* 0 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF + 0),
    /* 1 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
    /* 2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 4, 0),
    /* IPv4: the source address's first three bytes. */
    /* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
    /* 4 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
    /* 5 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 6 */ BPF_JUMP(BPF_JMP | BPF_JA, 7, 0, 0),
    /* IPv6: the source's first seven bytes (source at offset 8), folded into one word. */
    /* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 8),
    /* 8 */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x01000193),
    /* 9 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* 10 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
    /* 11 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
    /* 12 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    /* 13 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
    /* Both: A = X * 2^32/phi, its top bits, mod sockets. */
    /* 14 */ BPF_STMT(BPF_MISC | BPF_TXA, 0),
    /* 15 */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1),
    /* 16 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
    /* 17 */ BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, sockets),
    /* 18 */ BPF_STMT(BPF_RET | BPF_A, 0),
  };
  struct sock_fprog prog = { .len = sizeof code / sizeof code[0], .filter = code };
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) return throw_errno(env, "SO_ATTACH_REUSEPORT_CBPF", errno);
  return NULL;
}

static void free_shared(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  shared_t *sh = data;
  free(sh->slots);
  free(sh);
}

/* This environment's shared_t, made on first use; NULL with a JS exception pending. */
static shared_t *shared_for(napi_env env) {
  shared_t *sh;
  if (napi_get_instance_data(env, (void **)&sh) == napi_ok && sh != NULL) return sh;
  sh = calloc(1, sizeof *sh);
  if (sh != NULL) sh->slots = malloc((size_t)MAX_BATCH * SLOT);
  if (sh == NULL || sh->slots == NULL) {
    free(sh);
    throw_errno(env, "udp_batch", ENOMEM);
    return NULL;
  }
  for (int i = 0; i < MAX_BATCH; i++) {
    sh->iov[i].iov_base = sh->slots + (size_t)i * SLOT;
    sh->iov[i].iov_len = SLOT;
  }
  napi_value kept;
  if (napi_create_buffer(env, KEPT_BUFFER, (void **)&sh->kept_data, &kept) != napi_ok || napi_create_reference(env, kept, 1, &sh->kept) != napi_ok ||
      napi_set_instance_data(env, sh, free_shared, NULL) != napi_ok) {
    free(sh->slots);
    free(sh);
    napi_throw_error(env, NULL, "udp_batch: cannot keep the receive buffers");
    return NULL;
  }
  return sh;
}

/*
 * receive(fd, batch, onBatch(buf, count)): read the socket on the main thread's event
 * loop from now on; returns a handle for stop(). `buf` is valid during the call only
 * (the next batch reuses it).
 */
static napi_value js_receive(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t batch;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_uint32(env, argv[1], &batch));
  struct uv_loop_s *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  shared_t *sh = shared_for(env);
  if (sh == NULL) return NULL;
  receiver_t *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_errno(env, "udp_batch", ENOMEM);
  r->poll = calloc(1, uv_handle_size(UV_POLL_HANDLE));
  if (r->poll == NULL) {
    free(r);
    return throw_errno(env, "udp_batch", ENOMEM);
  }
  r->fd = fd;
  r->env = env;
  r->shared = sh;
  r->batch = batch < 1 ? 1 : batch > MAX_BATCH ? MAX_BATCH : (int)batch;
  napi_value name;
  CHECK(napi_create_reference(env, argv[2], 1, &r->callback));
  CHECK(napi_create_string_utf8(env, "udp_batch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &r->async));
  int e = uv_poll_init(loop, r->poll, fd);
  if (e == 0) {
    *(receiver_t **)r->poll = r;
    e = uv_poll_start(r->poll, UV_READABLE_EVENT, on_readable);
  }
  if (e != 0) {
    napi_throw_error(env, NULL, "udp_batch: uv_poll_init/uv_poll_start failed");
    return NULL;
  }
  napi_value handle;
  CHECK(napi_create_external(env, r, NULL, NULL, &handle));
  return handle;
}

/* stop(handle): no more reads; the socket is closed when it returns (the port is free). */
static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  receiver_t *r;
  CHECK(napi_get_value_external(env, argv[0], (void **)&r));
  if (r->stopped) return NULL;
  r->stopped = 1;
  uv_poll_stop(r->poll);
  close(r->fd);
  napi_delete_reference(env, r->callback);
  napi_async_destroy(env, r->async);
  uv_close((uv_handle_t *)r->poll, free_receiver);
  return NULL;
}

/* sendBatch(fd, buf, count): one sendmmsg for the batch (records as in receive); returns datagrams sent. */
static napi_value js_send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t count;
  uint8_t *buf;
  size_t size;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_buffer_info(env, argv[1], (void **)&buf, &size));
  CHECK(napi_get_value_uint32(env, argv[2], &count));
  if (count > MAX_BATCH || (size_t)count * META > size) return throw_errno(env, "udp_batch: sendBatch", EINVAL);
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in6 to[MAX_BATCH];
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *m = buf + i * META;
    uint32_t offset;
    uint16_t len, port;
    memcpy(&offset, m, 4);
    memcpy(&len, m + 4, 2);
    memcpy(&port, m + 6, 2);
    if ((size_t)offset + len > size) return throw_errno(env, "udp_batch: sendBatch", EINVAL);
    memset(&to[i], 0, sizeof to[i]);
    memset(&msgs[i], 0, sizeof msgs[i]);
    socklen_t tolen;
    if (m[8] == 4) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&to[i];
      s4->sin_family = AF_INET;
      s4->sin_port = htons(port);
      memcpy(&s4->sin_addr, m + 16, 4);
      tolen = sizeof(struct sockaddr_in);
    } else {
      to[i].sin6_family = AF_INET6;
      to[i].sin6_port = htons(port);
      memcpy(&to[i].sin6_addr, m + 16, 16);
      tolen = sizeof to[i];
    }
    iov[i].iov_base = buf + offset;
    iov[i].iov_len = len;
    msgs[i].msg_hdr.msg_name = &to[i];
    msgs[i].msg_hdr.msg_namelen = tolen;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t sent = 0;
  while (sent < count) {
    int n = sendmmsg(fd, msgs + sent, count - sent, MSG_DONTWAIT);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    /* A full send buffer, or one address the kernel refuses: skip that datagram, as a lost UDP answer. */
    if (n < 0 && errno == EAGAIN) break;
    sent++;
  }
  napi_value out;
  CHECK(napi_create_uint32(env, sent, &out));
  return out;
}

/* closeFd(fd): a socket bound but never handed to receive(). */
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  close(fd);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "bind", NULL, js_bind, NULL, NULL, NULL, napi_default, NULL },
    { "steerByPrefix", NULL, js_steer_by_prefix, NULL, NULL, NULL, napi_default, NULL },
    { "receive", NULL, js_receive, NULL, NULL, NULL, napi_default, NULL },
    { "stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL },
    { "sendBatch", NULL, js_send_batch, NULL, NULL, NULL, napi_default, NULL },
    { "closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value meta, batch;
  napi_create_uint32(env, META, &meta);
  napi_create_uint32(env, MAX_BATCH, &batch);
  napi_set_named_property(env, exports, "META", meta);
  napi_set_named_property(env, exports, "MAX_BATCH", batch);
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
