/* Helpers shared by the command-line verbs. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int gw_cli_take_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) {
        return 0;
    }
    if (a[n] == '=') {
        *out = a + n + 1;
        return **out != '\0' ? 1 : -1;
    }
    if (a[n] != '\0') {
        return 0;
    }
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

int gw_cli_usage_error(const char *verb, const char *what, const char *option, const char *usage)
{
    int n = (int)strcspn(option, "=");
    fprintf(stderr, "tcgw %s: %s%.*s\n%s", verb, what, n, option, usage);
    return 2;
}
