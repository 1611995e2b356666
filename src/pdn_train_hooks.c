/*
 * The training loop's per-iteration hooks (src/pdn_hooks.h renames darknet's calls of train_network(),
 * train_network_waitkey() and train_networks() to these): after the iteration in progress, a stop request set by
 * pdn_train.c's signal handler saves <backup>/<cfg>_interrupted.weights and exits with status 0.
 *
 * Part of the hook objects linked into every target built from darknet's objects (darknet's own executable and
 * libdarknet too), where no stop is ever requested: there they are darknet's calls and nothing more.
 */
#include "pdn_internal.h"

#include <stdlib.h>

#include "darknet.h"
#include "network.h"
#include "parser.h"

volatile sig_atomic_t pdn_train_stop_requested;
char pdn_train_interrupted_weights[4096];

/* the hooks' declarations (darknet's network.h declares them to darknet's files, renamed) */
float pdn_hook_train_network(network net, data d);
float pdn_hook_train_network_waitkey(network net, data d, int wait_key);
#ifdef GPU
float pdn_hook_train_networks(network *nets, int n, data d, int interval);
#endif

static void save_and_exit(network net)
{
    /* this iteration's progress line is never printed (darknet prints it after train_network returns), so say
     * which iteration the saved weights hold: pydarknet.training reads this line */
    printf("\n Stop requested: saving %s\n", pdn_train_interrupted_weights);
    save_weights(net, pdn_train_interrupted_weights);
    printf("\npydarknet: stopped after iteration %lld, weights saved to %s\n",
           (long long)get_current_iteration(net), pdn_train_interrupted_weights);
    fflush(stdout);
    exit(0);
}

float pdn_hook_train_network(network net, data d)
{
    float loss = train_network(net, d);
    if (pdn_train_stop_requested) save_and_exit(net);
    return loss;
}

float pdn_hook_train_network_waitkey(network net, data d, int wait_key)
{
    float loss = train_network_waitkey(net, d, wait_key);
    if (pdn_train_stop_requested) save_and_exit(net);
    return loss;
}

#ifdef GPU
float pdn_hook_train_networks(network *nets, int n, data d, int interval)
{
    float loss = train_networks(nets, n, d, interval);
    if (pdn_train_stop_requested) {
        sync_nets(nets, n, 0);
        save_and_exit(nets[0]);
    }
    return loss;
}
#endif
