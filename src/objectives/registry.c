/* Every objective maec trains, one line each: X(name) registers the ObjectiveClass
 * name_objective of src/objectives/name.c under objective.name `name` (objective.h). The first
 * is the default. */
#include "maec/objective.h"

#include <string.h>

#define OBJECTIVES(X) \
    X(mae)            \
    X(supmae)

#define DECLARE(n) extern const ObjectiveClass n##_objective;
OBJECTIVES(DECLARE)
#define POINTER(n) &n##_objective,
static const ObjectiveClass *const classes[] = {OBJECTIVES(POINTER)};
#define NAME(n) #n,
const char *const objective_names[] = {OBJECTIVES(NAME) NULL};

#define COUNT (sizeof classes / sizeof classes[0])

const ObjectiveClass *objective_class(int index)
{
    if (index < 0 || (size_t)index >= COUNT)
        fatal("internal: no objective %d (%zu are registered)", index, COUNT);
    return classes[index];
}

const ObjectiveClass *objective_find(const char *name)
{
    for (size_t i = 0; i < COUNT; i++)
        if (!strcmp(objective_names[i], name))
            return classes[i];
    return NULL;
}
