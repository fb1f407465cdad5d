/* See shim.h: one-line forwards to DPDK's static inline functions. */
#include <rte_config.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_hash_crc.h>
#include "shim.h"

uint16_t roam_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t roam_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }

struct rte_mbuf *roam_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int roam_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, n); }
void roam_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *roam_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *roam_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *roam_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int roam_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t roam_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t roam_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
void roam_pktmbuf_reset(struct rte_mbuf *m) { rte_pktmbuf_reset(m); }
uint16_t roam_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }
uint16_t roam_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value)
{ return rte_mbuf_refcnt_update(m, value); }

unsigned int roam_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n,
                                     unsigned int *free_space)
{ return rte_ring_enqueue_burst(r, objs, n, free_space); }
unsigned int roam_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n,
                                     unsigned int *available)
{ return rte_ring_dequeue_burst(r, objs, n, available); }
unsigned int roam_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
unsigned int roam_ring_free_count(const struct rte_ring *r) { return rte_ring_free_count(r); }

unsigned int roam_lcore_id(void) { return rte_lcore_id(); }
int roam_thread_register(void) { return rte_thread_register(); }
void roam_thread_unregister(void) { rte_thread_unregister(); }
int roam_errno(void) { return rte_errno; }
uint64_t roam_rdtsc(void) { return rte_rdtsc(); }
void roam_pause(void) { rte_pause(); }
void roam_prefetch0(const volatile void *p) { rte_prefetch0(p); }

uint32_t roam_hash_crc(const void *data, uint32_t data_len, uint32_t init_val)
{ return rte_hash_crc(data, data_len, init_val); }
