/*
 * Plain-named exports of DPDK's `static inline` functions, which bindgen cannot bind.
 * Every function is a one-line forward; logic stays in Rust.
 */
#ifndef ROAM_SHIM_H
#define ROAM_SHIM_H

#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

/* ethdev fast path */
uint16_t roam_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t roam_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

/* mbuf */
struct rte_mbuf *roam_pktmbuf_alloc(struct rte_mempool *mp);
int roam_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void roam_pktmbuf_free(struct rte_mbuf *m);
char *roam_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *roam_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *roam_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int roam_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t roam_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t roam_pktmbuf_tailroom(const struct rte_mbuf *m);
void roam_pktmbuf_reset(struct rte_mbuf *m);
uint16_t roam_mbuf_refcnt_read(const struct rte_mbuf *m);
uint16_t roam_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);

/* ring */
unsigned int roam_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n,
                                     unsigned int *free_space);
unsigned int roam_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n,
                                     unsigned int *available);
unsigned int roam_ring_count(const struct rte_ring *r);
unsigned int roam_ring_free_count(const struct rte_ring *r);

/* lcore, errno, time */
unsigned int roam_lcore_id(void);
/* Gives a non-EAL thread an lcore id (so mempool caches work for it), and takes it back. */
int roam_thread_register(void);
void roam_thread_unregister(void);
int roam_errno(void);
uint64_t roam_rdtsc(void);
void roam_pause(void);
void roam_prefetch0(const volatile void *p);


/* CRC32 hash (SSE4.2) for rte_hash's hash_func */
uint32_t roam_hash_crc(const void *data, uint32_t data_len, uint32_t init_val);

#endif
